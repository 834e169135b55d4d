"""MLICv2 weights files: the layout of :mod:`codec.context.weights` (the hyperprior it builds
on, the multi-reference entropy model as float16 ``em.*`` and ``mlicv2.inv_gain``), and the
:class:`~codec.context.family.ContextFamily` record that ties MLICv2's pieces together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..context import weights as _weights
from ..context.family import ContextFamily
from ..context.weights import ContextWeights
from ..weightfiles import InstalledWeights
from .entropy_model import EntropyModelConfig, MultiReferenceEntropyModel
from .integer import IntegerMultiReference

WEIGHTS_DIR = Path(__file__).with_name("weights")
#: model ids as written in the container's ``model_id`` field
MODEL_IDS = {"mlicv2-lite": 1}

FAMILY = ContextFamily(name="mlicv2", model_ids=MODEL_IDS, config_class=EntropyModelConfig,
                       float_class=MultiReferenceEntropyModel, integer_class=IntegerMultiReference,
                       weights_dir=WEIGHTS_DIR,
                       ablations=("channel", "reweight", "local", "global_context", "hyper_guided", "lrp"))

MLICv2Weights = ContextWeights


def export_weights(hyperprior_path: Path, entropy_model: MultiReferenceEntropyModel, path: Path,
                   manifest: dict[str, Any]) -> dict[str, Any]:
    return _weights.export_weights(FAMILY, hyperprior_path, entropy_model, path, manifest)


def load_weights_file(path: Path, expected_sha256: str | None = None) -> ContextWeights:
    return _weights.load_weights_file(FAMILY, path, expected_sha256)


float_entropy_model = _weights.float_entropy_model


def installed_weights() -> list[InstalledWeights]:
    return _weights.installed_weights(FAMILY)
