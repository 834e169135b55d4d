"""One registry of codecs: names for people, numeric wire ids for the container.

Wire ids are fixed in :data:`codec.container.CODEC_IDS` (the table FORMAT.md documents);
registering a name under any other id, or twice, is an error. The CLI, the library and the
container all look codecs up here and nowhere else.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from .container import CODEC_IDS
from .errors import CodecError


@dataclass(frozen=True)
class CodecSpec:
    name: str
    wire_id: int
    kind: str  # "image" (lossy), "lossless" (exact, fixed-size images or image sets); "video" later
    qualities: tuple[int, ...]
    default_quality: int
    target: str  # "module:attr" of a factory taking no arguments
    summary: str
    #: decoding work bound: a stream may declare at most this many pixels per byte of its size
    #: (real streams stay far below; see codec.api.decompress)
    max_pixels_per_byte: int = 1 << 12
    free_pixels: int = 1 << 22  # ... unless it declares no more than this
    #: fits a model to each image at encode time (minutes per image): left out of evaluations
    #: unless asked for by name
    fitted: bool = False

    def load(self) -> Any:
        """Import the implementation (torch and friends load only here)."""
        module, attr = self.target.split(":")
        return getattr(importlib.import_module(module), attr)()


_BY_NAME: dict[str, CodecSpec] = {}
_BY_ID: dict[int, CodecSpec] = {}


def register_codec(spec: CodecSpec) -> None:
    if spec.name in _BY_NAME:
        raise ValueError(f"codec {spec.name!r} is already registered")
    if CODEC_IDS.get(spec.name) != spec.wire_id:
        raise ValueError(f"codec {spec.name!r} must use wire id {CODEC_IDS.get(spec.name)}, not {spec.wire_id}")
    if spec.wire_id in _BY_ID:
        raise ValueError(f"wire id {spec.wire_id} is already taken by {_BY_ID[spec.wire_id].name!r}")
    _BY_NAME[spec.name] = spec
    _BY_ID[spec.wire_id] = spec


def get_codec(name: str) -> CodecSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(_BY_NAME)) or "none"
        raise CodecError(f"unknown codec {name!r} (available: {known})") from None


def codec_for_wire_id(wire_id: int) -> CodecSpec:
    try:
        return _BY_ID[wire_id]
    except KeyError:
        raise CodecError(f"stream uses codec id {wire_id}, which this version of lcodec does not know") from None


def codecs() -> list[CodecSpec]:
    return sorted(_BY_NAME.values(), key=lambda s: s.wire_id)


register_codec(CodecSpec(
    name="hyperprior", wire_id=CODEC_IDS["hyperprior"], kind="image",
    qualities=(1, 2, 3, 4, 5, 6), default_quality=3,
    target="codec.hyperprior.coding:load_default",
    summary="mean-scale hyperprior (Minnen et al. 2018), 6 qualities from one gain-modulated model",
))
register_codec(CodecSpec(
    name="pc-mnist", wire_id=CODEC_IDS["pc-mnist"], kind="lossless",
    qualities=(0,), default_quality=0,
    target="codec.pc.coding:load_mnist",
    summary="lossless 28x28 grayscale, hidden Chow-Liu tree trained on MNIST (Liu et al. 2022)",
    max_pixels_per_byte=64, free_pixels=1 << 18,  # real digit sets code at about 6 pixels per byte
))
register_codec(CodecSpec(
    name="pc-fashion-mnist", wire_id=CODEC_IDS["pc-fashion-mnist"], kind="lossless",
    qualities=(0,), default_quality=0,
    target="codec.pc.coding:load_fashion_mnist",
    summary="lossless 28x28 grayscale, hidden Chow-Liu tree trained on Fashion-MNIST (Liu et al. 2022)",
    max_pixels_per_byte=64, free_pixels=1 << 18,  # real sets code at about 2.5 pixels per byte
))
register_codec(CodecSpec(
    name="overfit", wire_id=CODEC_IDS["overfit"], kind="image",
    qualities=(1, 2, 3, 4, 5, 6), default_quality=3,
    target="codec.overfit.coding:load_default",
    summary="per-image overfitted latents + ARM + synthesis (Cool-chic/C3 style); slow to encode, no weights",
    fitted=True,
))
