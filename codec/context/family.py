"""What a sliced context codec is made of, in one record: the codecs built on
:mod:`codec.context` (MLICv2, S2LIC) share their weights files, coding, training and
evaluation code, and differ only in the :class:`ContextFamily` they hand to it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import CodecError
from .slices import SlicedEntropyModel
from .tiles import IntegerSlicedModel


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one record per family
class ContextFamily:
    name: str  # the registry name; also the prefix of its tensors and weights files
    model_ids: dict[str, int]  # as written in the container's model_id field
    config_class: Any  # a frozen dataclass with to_json/from_json and M, qualities, scale_min fields
    float_class: type[SlicedEntropyModel]
    integer_class: type[IntegerSlicedModel]
    weights_dir: Path
    #: config flags an ablation may switch off
    ablations: tuple[str, ...] = ()

    @property
    def model_id(self) -> int:
        return next(iter(self.model_ids.values()))

    def config(self, M: int, qualities: int, scale_min: float, without: list[str] | tuple[str, ...] = ()) -> Any:
        """The default entropy-model config for a latent of ``M`` channels with the contexts
        ``without`` switched off; unknown names are a :class:`CodecError`."""
        unknown = [n for n in without if n not in self.ablations]
        if unknown:
            raise CodecError(f"unknown contexts {unknown}: choose from {', '.join(self.ablations)}")
        cfg = self.config_class(M=M, qualities=qualities, scale_min=scale_min)
        return replace(cfg, **{n: False for n in without})

    def config_from_json(self, text: str) -> Any:
        return self.config_class.from_json(text)
