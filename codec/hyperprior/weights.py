"""Weights files: safetensors (never pickle) plus a JSON manifest, verified by SHA-256.

The export step is the one place where the float model becomes integer coding tables:
:func:`build_tables` runs once, its integers are stored inside the weights file, and every
encoder and decoder loads those exact integers. The same step stores the per-quality gains
the integer hyper-synthesis (:mod:`codec.hyperprior.integer`) needs, as integers and
float32, so no transcendental function runs at coding time. ``tests/codec`` checks that rebuilding
the tables from the stored float weights gives the stored integers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from entropy import TableSet, gaussian_scale_table, gaussian_tables, pmf_to_freqs

from ..errors import WeightsError
from ..weightfiles import InstalledWeights, read_weights, write_weights
from ..weightfiles import installed_weights as _installed
from .integer import A_FRAC, IntegerHyperSynthesis
from .model import HyperpriorConfig, MeanScaleHyperprior

WEIGHTS_DIR = Path(__file__).with_name("weights")
#: model ids as written in the container's ``model_id`` field
MODEL_IDS = {"hyperprior-lite": 2}
#: model ids of earlier lcodec versions that this one no longer decodes, and why
RETIRED_MODEL_IDS = {1: "float entropy parameters, which could differ between machines"}
Z_TAIL_MASS = 1e-9
Z_GRID = 512  # hyper-latent CDFs are evaluated on -Z_GRID..Z_GRID


@dataclass(frozen=True)
class CodingTables:
    """Everything the entropy coder needs, all integers except the scale bin edges."""

    z: TableSet  # one table per hyper-latent channel
    y: TableSet  # one table per Gaussian scale level
    scales: np.ndarray  # float32 upper edges of the scale levels
    hyper: IntegerHyperSynthesis  # integer hyper-latent -> means and scales, exactly


@torch.no_grad()
def coding_gains(model: MeanScaleHyperprior) -> dict[str, torch.Tensor]:
    """The gains coding uses, fixed once: ``inv_hgain`` in units of 2^-A_FRAC (int32) and
    ``gain`` as float32, one row per quality."""
    return {
        "coding.inv_hgain_fixed": torch.round(torch.exp(model.log_inv_hgain.double()) * 2**A_FRAC).to(torch.int32),
        "coding.gain": torch.exp(model.log_gain.double()).float(),
    }


def _integer_hyper_synthesis(tensors: dict[str, torch.Tensor], config: HyperpriorConfig) -> IntegerHyperSynthesis:
    layers = [(tensors[f"model.h_s.{i}.weight"].numpy(), tensors[f"model.h_s.{i}.bias"].numpy()) for i in (0, 2, 4)]
    return IntegerHyperSynthesis(layers, tensors["coding.inv_hgain_fixed"].numpy(), tensors["coding.gain"].numpy(),
                                 config.scale_min)


@torch.no_grad()
def build_tables(model: MeanScaleHyperprior) -> CodingTables:
    """Integer tables from the float model: the factorized prior of ``z`` and the Gaussians."""
    cfg = model.config
    C = cfg.N
    k = torch.arange(-Z_GRID, Z_GRID + 1, dtype=torch.float32)
    grid = k[None, :].repeat(C, 1)
    lower = model.z_cumulative_logits(grid - 0.5).double()
    upper = model.z_cumulative_logits(grid + 0.5).double()
    # sigmoid differences, computed on the side of the median where they do not cancel
    sign = -torch.sign(lower + upper)
    pmf = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs().numpy()
    cdf_lo = torch.sigmoid(lower).numpy()  # mass below each bin
    cdf_hi = torch.sigmoid(-upper).numpy()  # mass above each bin
    tables, offsets = [], []
    for c in range(C):
        # keep the bins with more than tail/2 of the mass at-or-below and at-or-above them
        keep = np.nonzero((cdf_lo[c] + pmf[c] > Z_TAIL_MASS / 2) & (cdf_hi[c] + pmf[c] > Z_TAIL_MASS / 2))[0]
        if keep.size == 0:
            keep = np.array([int(np.argmax(pmf[c]))])
        a, b = int(keep.min()), int(keep.max())
        p = pmf[c, a:b + 1]
        escape = max(0.0, 1.0 - float(p.sum()))
        tables.append(pmf_to_freqs(np.append(p, escape)))
        offsets.append(a - Z_GRID)
    scales = gaussian_scale_table(cfg.scale_min, cfg.scale_max, cfg.scale_levels).astype(np.float32)
    state = {f"model.{k}": v.detach().half() for k, v in model.state_dict().items() if k.startswith("h_s.")}
    return CodingTables(
        z=TableSet.from_tables(tables, offsets),
        y=gaussian_tables(scales.astype(np.float64)),
        scales=scales,
        hyper=_integer_hyper_synthesis({**state, **coding_gains(model)}, cfg),
    )


def _tables_to_tensors(t: CodingTables) -> dict[str, torch.Tensor]:
    out = {}
    for name, ts in (("z", t.z), ("y", t.y)):
        out[f"tables.{name}.freqs"] = torch.from_numpy(ts.freqs.astype(np.int32))
        out[f"tables.{name}.starts"] = torch.from_numpy(ts.starts.astype(np.int64))
        out[f"tables.{name}.offsets"] = torch.from_numpy(ts.offsets.astype(np.int32))
    out["tables.scales"] = torch.from_numpy(t.scales.astype(np.float32))
    return out


def _tables_from_tensors(d: dict[str, torch.Tensor], precision: int, config: HyperpriorConfig) -> CodingTables:
    def ts(name: str) -> TableSet:
        return TableSet(d[f"tables.{name}.freqs"].numpy(), d[f"tables.{name}.starts"].numpy(),
                        d[f"tables.{name}.offsets"].numpy(), precision)

    return CodingTables(z=ts("z"), y=ts("y"), scales=d["tables.scales"].numpy().astype(np.float32),
                        hyper=_integer_hyper_synthesis(d, config))


def export_weights(model: MeanScaleHyperprior, path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write ``path`` (.safetensors) and ``path.with_suffix('.json')``; returns the manifest."""
    from entropy import PRECISION

    model = model.eval()
    # float weights travel as float16 (half the file); the tables are built from the model
    # exactly as it loads again, so encoder, decoder and tables all agree
    state = {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous().clone()
             for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    tensors = {f"model.{k}": v for k, v in state.items()}
    tensors.update(_tables_to_tensors(build_tables(model)))
    tensors.update(coding_gains(model))
    return write_weights(tensors, {"config": model.config.to_json(), "precision": str(PRECISION)}, path,
                         {"config": json.loads(model.config.to_json()), **manifest})


def load_model_file(path: Path, expected_sha256: str | None = None, coding_only: bool = False
                    ) -> tuple[MeanScaleHyperprior, CodingTables]:
    """Load a weights file; verify its SHA-256 first when one is expected.

    ``coding_only`` builds the model for encoding and decoding (see
    :class:`~codec.hyperprior.model.MeanScaleHyperprior`): no compressai import, and the
    hyper-latent prior's float parameters are skipped, its integer tables being stored.
    """
    tensors, meta = read_weights(path, expected_sha256)
    return model_from_tensors(tensors, meta, path, coding_only)


def model_from_tensors(tensors: dict[str, torch.Tensor], meta: dict[str, str], path: Path,
                       coding_only: bool = False) -> tuple[MeanScaleHyperprior, CodingTables]:
    """The hyperprior held in a weights file's tensors and metadata (``model.*``, ``tables.*``,
    ``coding.*`` keys; other keys are ignored, so a file may carry more than the hyperprior)."""
    try:
        config = HyperpriorConfig.from_json(meta["config"])
        precision = int(meta["precision"])
    except (KeyError, ValueError, TypeError) as exc:
        raise WeightsError(f"weights file {path} is not a valid lcodec weights file ({exc})") from None
    model = MeanScaleHyperprior(config, coding_only=coding_only)
    state = {k[len("model."):]: v.float() if v.is_floating_point() else v
             for k, v in tensors.items() if k.startswith("model.")}
    if coding_only:
        state = {k: v for k, v in state.items() if not k.startswith("entropy_bottleneck.")}
    try:
        model.load_state_dict(state)
        if not coding_only and "coding.gain" not in tensors:
            # a file from before model id 2 (training may start from one): derive the gains
            tensors = {**tensors, **coding_gains(model)}
        tables = _tables_from_tensors(tensors, precision, config)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise WeightsError(f"weights file {path} does not match the model ({str(exc).splitlines()[0]})") from None
    return model.eval(), tables


def installed_weights() -> list[InstalledWeights]:
    return _installed(WEIGHTS_DIR, "hyperprior*.json")
