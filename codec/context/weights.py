"""Weights files of the sliced context codecs: the transforms and hyperprior they build on,
plus the entropy model.

A file is self-contained: it carries every tensor of the hyperprior it was trained on
(``model.*``, ``tables.*``, ``coding.*``, read by :func:`codec.hyperprior.weights.model_from_tensors`),
the entropy model as float16 (``em.*``), from which the integer context networks are built
when the file loads, and per quality the float32 ``inv_gain`` the contexts use
(``NAME.inv_gain``: stored, so no exp is computed at coding time). The float16 values are the
ones the float model is evaluated with too (:func:`float_entropy_model`), so the two agree up
to fixed-point rounding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import WeightsError
from ..hyperprior.model import MeanScaleHyperprior
from ..hyperprior.weights import CodingTables, model_from_tensors
from ..weightfiles import InstalledWeights, read_weights, write_weights
from ..weightfiles import installed_weights as _installed
from .family import ContextFamily
from .slices import SlicedEntropyModel
from .tiles import IntegerSlicedModel


@dataclass(frozen=True)
class ContextWeights:
    family: ContextFamily
    hyperprior: MeanScaleHyperprior  # coding-only transforms
    tables: CodingTables
    config: Any
    entropy_model: IntegerSlicedModel
    float_state: dict[str, torch.Tensor]  # the entropy model's float16 weights, as float32
    #: per quality, the float32 ``inv_gain`` the contexts use
    inv_gain: np.ndarray


def export_weights(family: ContextFamily, hyperprior_path: Path, entropy_model: SlicedEntropyModel, path: Path,
                   manifest: dict[str, Any]) -> dict[str, Any]:
    """Write ``path`` (.safetensors) and its manifest from a hyperprior weights file and a
    trained entropy model."""
    tensors, meta = read_weights(hyperprior_path)
    hp, _ = model_from_tensors(tensors, meta, hyperprior_path)
    tensors[f"{family.name}.inv_gain"] = torch.exp(hp.log_inv_gain.detach().double()).float()
    for k, v in entropy_model.state_dict().items():
        tensors[f"em.{k}"] = v.detach().half().contiguous().clone()
    hp_manifest = json.loads(Path(hyperprior_path).with_suffix(".json").read_text())
    cfg_json = entropy_model.config.to_json()  # type: ignore[attr-defined]
    metadata = {"config": meta["config"], "precision": meta["precision"], "entropy_config": cfg_json}
    full = {"hyperprior": {"file": hp_manifest.get("file"), "sha256": hp_manifest.get("sha256"),
                           "steps": hp_manifest.get("steps")},
            "entropy_config": json.loads(cfg_json), **manifest}
    return write_weights(tensors, metadata, path, full)


def load_weights_file(family: ContextFamily, path: Path, expected_sha256: str | None = None) -> ContextWeights:
    tensors, meta = read_weights(path, expected_sha256)
    hp, tables = model_from_tensors(tensors, meta, path, coding_only=True)
    try:
        cfg = family.config_from_json(meta["entropy_config"])
    except (KeyError, ValueError, TypeError) as exc:
        raise WeightsError(f"weights file {path} is not a {family.name} weights file ({exc})") from None
    state = {k[3:]: v.float() for k, v in tensors.items() if k.startswith("em.")}
    try:
        inv_gain = tensors[f"{family.name}.inv_gain"].numpy().astype(np.float32)
        net = family.integer_class({f"em.{k}": v.numpy().astype(np.float64) for k, v in state.items()}, cfg)
    except (KeyError, ValueError) as exc:
        raise WeightsError(f"weights file {path} does not match its entropy model ({exc})") from None
    return ContextWeights(family, hp, tables, cfg, net, state, inv_gain)


def float_entropy_model(w: ContextWeights) -> SlicedEntropyModel:
    """The float model with exactly the stored weights (for evaluation and tests)."""
    em = w.family.float_class(w.config)
    em.load_state_dict(w.float_state)
    return em.eval()


def installed_weights(family: ContextFamily) -> list[InstalledWeights]:
    return _installed(family.weights_dir, f"{family.name}*.json")
