"""S2LIC weights files: the layout of :mod:`codec.context.weights` (the hyperprior it builds
on, the ACGC entropy model as float16 ``em.*`` and ``s2lic.inv_gain``), and the
:class:`~codec.context.family.ContextFamily` record that ties S2LIC's pieces together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..context import weights as _weights
from ..context.family import ContextFamily
from ..context.weights import ContextWeights
from ..weightfiles import InstalledWeights
from .entropy_model import ACGCConfig, ACGCEntropyModel
from .integer import IntegerACGC

WEIGHTS_DIR = Path(__file__).with_name("weights")
#: model ids as written in the container's ``model_id`` field
MODEL_IDS = {"s2lic-lite": 1}

FAMILY = ContextFamily(name="s2lic", model_ids=MODEL_IDS, config_class=ACGCConfig, float_class=ACGCEntropyModel,
                       integer_class=IntegerACGC, weights_dir=WEIGHTS_DIR,
                       ablations=("channel_attention", "global_inter", "local", "lrp"))


def export_weights(hyperprior_path: Path, entropy_model: ACGCEntropyModel, path: Path,
                   manifest: dict[str, Any]) -> dict[str, Any]:
    return _weights.export_weights(FAMILY, hyperprior_path, entropy_model, path, manifest)


def load_weights_file(path: Path, expected_sha256: str | None = None) -> ContextWeights:
    return _weights.load_weights_file(FAMILY, path, expected_sha256)


def installed_weights() -> list[InstalledWeights]:
    return _weights.installed_weights(FAMILY)
