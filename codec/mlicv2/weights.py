"""MLICv2 weights files: the transforms and hyperprior they build on, plus the entropy model.

A file is self-contained: it carries every tensor of the hyperprior it was trained on
(``model.*``, ``tables.*``, ``coding.*``, read by :func:`codec.hyperprior.weights.model_from_tensors`)
and the multi-reference entropy model as float16 (``em.*``), from which the integer context
networks are built when the file loads. The float16 values are the ones the float model is
evaluated with too (:func:`float_entropy_model`), so the two agree up to fixed-point rounding.
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
from .entropy_model import EntropyModelConfig, MultiReferenceEntropyModel
from .integer import IntegerMultiReference

WEIGHTS_DIR = Path(__file__).with_name("weights")
#: model ids as written in the container's ``model_id`` field
MODEL_IDS = {"mlicv2-lite": 1}


@dataclass(frozen=True)
class MLICv2Weights:
    hyperprior: MeanScaleHyperprior  # coding-only transforms
    tables: CodingTables
    config: EntropyModelConfig
    entropy_model: IntegerMultiReference
    float_state: dict[str, torch.Tensor]  # the entropy model's float16 weights, as float32
    #: per quality, the float32 ``inv_gain`` the contexts use (stored: no exp at coding time)
    inv_gain: np.ndarray


def export_weights(hyperprior_path: Path, entropy_model: MultiReferenceEntropyModel, path: Path,
                   manifest: dict[str, Any]) -> dict[str, Any]:
    """Write ``path`` (.safetensors) and its manifest from a hyperprior weights file and a
    trained entropy model."""
    tensors, meta = read_weights(hyperprior_path)
    hp, _ = model_from_tensors(tensors, meta, hyperprior_path)
    tensors["mlicv2.inv_gain"] = torch.exp(hp.log_inv_gain.detach().double()).float()
    for k, v in entropy_model.state_dict().items():
        tensors[f"em.{k}"] = v.detach().half().contiguous().clone()
    hp_manifest = json.loads(Path(hyperprior_path).with_suffix(".json").read_text())
    metadata = {"config": meta["config"], "precision": meta["precision"],
                "entropy_config": entropy_model.config.to_json()}
    full = {"hyperprior": {"file": hp_manifest.get("file"), "sha256": hp_manifest.get("sha256"),
                           "steps": hp_manifest.get("steps")},
            "entropy_config": json.loads(entropy_model.config.to_json()), **manifest}
    return write_weights(tensors, metadata, path, full)


def load_weights_file(path: Path, expected_sha256: str | None = None) -> MLICv2Weights:
    tensors, meta = read_weights(path, expected_sha256)
    hp, tables = model_from_tensors(tensors, meta, path, coding_only=True)
    try:
        cfg = EntropyModelConfig.from_json(meta["entropy_config"])
    except (KeyError, ValueError, TypeError) as exc:
        raise WeightsError(f"weights file {path} is not an MLICv2 weights file ({exc})") from None
    state = {k[3:]: v.float() for k, v in tensors.items() if k.startswith("em.")}
    try:
        inv_gain = tensors["mlicv2.inv_gain"].numpy().astype(np.float32)
        net = IntegerMultiReference({f"em.{k}": v.numpy().astype(np.float64) for k, v in state.items()}, cfg)
    except (KeyError, ValueError) as exc:
        raise WeightsError(f"weights file {path} does not match its entropy model ({exc})") from None
    return MLICv2Weights(hp, tables, cfg, net, state, inv_gain)


def float_entropy_model(w: MLICv2Weights) -> MultiReferenceEntropyModel:
    """The float model with exactly the stored weights (for evaluation and tests)."""
    em = MultiReferenceEntropyModel(w.config)
    em.load_state_dict(w.float_state)
    return em.eval()


def installed_weights() -> list[InstalledWeights]:
    return _installed(WEIGHTS_DIR, "mlicv2*.json")
