"""The typed interfaces every codec implements, and what the rest of lcodec sees of a codec.

A codec is a package and one registry entry (:mod:`codec.registry`). The library
(:mod:`codec.api`), the command line and ``lcodec eval`` reach it only through these types:

* :class:`CodecFactory`: what the registry's ``target`` returns. It hands out a ready codec
  for encoding (:meth:`~CodecFactory.for_encoding`, the weights it would code a new file
  with) or for a given stream (:meth:`~CodecFactory.for_stream`, the weights the stream
  names), and a cache key for evaluations.
* :class:`ImageCodec`: one image (HxWxC uint8, C = 1 or 3) to sections, and back.
* :class:`ImageSetCodec`: N same-size images to one stream, and back.
* :class:`VideoCodec`: frames with a frame rate to sections, and back.

Encoders return an :class:`Encoded` (sections, the quality to record, the encoder's own
reconstruction, statistics); decoders receive a :class:`StreamInfo` (the container header
fields a decoder may need) and return pixels. Integer symbols, entropy tables and model
numerics stay inside each codec's package; the container and its overhead stay in
:mod:`codec.container`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

#: ``progress(done, total, message)``: how an encoder reports long work (fitting, refining)
Progress = Callable[[int, int, str], None]


#: how refusals name an option's type
_KIND: dict[type, str] = {int: "an integer", float: "a number", str: "a string"}


@dataclass(frozen=True)
class EncoderOption:
    """One encoder option a codec takes, declared once: the library checks values against it,
    and the CLI and ``lcodec eval`` build their options from it."""

    name: str  # the keyword argument; the CLI flag is ``--name-with-dashes``
    type: type  # int, float or str
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    metavar: str | None = None
    #: a duration in seconds (the CLI also takes a unit: 90s, 10m, 2h)
    duration: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: object) -> object:
        """``value`` converted to the option's type, or a ValueError saying what is wrong.

        numpy scalars count as the Python numbers they hold (a value read from an array is
        as good as a literal); booleans are not numbers here, and no float is an integer.
        """
        if isinstance(value, (bool, np.bool_)):
            if self.type is not bool:
                raise ValueError(f"{self.name} must be {_KIND.get(self.type, self.type.__name__)}, not {value!r}")
        elif isinstance(value, np.integer):
            value = int(value)
        elif isinstance(value, np.floating):
            value = float(value)
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif self.type is str and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # "fast|slow|N" options take a count as a number too
        if not isinstance(value, self.type):
            raise ValueError(f"{self.name} must be {_KIND.get(self.type, self.type.__name__)}, "
                             f"not {type(value).__name__} {value!r}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}, not {value!r}")
        if isinstance(value, (int, float)):
            if value != value:  # NaN
                raise ValueError(f"{self.name} must be a number")
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"{self.name} must be at least {self.minimum:g}, not {value:g}")
            if self.maximum is not None and value > self.maximum:
                raise ValueError(f"{self.name} must be at most {self.maximum:g}, not {value:g}")
        return value


@dataclass(frozen=True)
class StreamInfo:
    """What a decoder learns from the container header."""

    width: int
    height: int
    channels: int  # 1 or 3
    quality: int | None  # None: the stream records no quality (lossless, or a target rate)
    frames: int = 1
    frame_rate: tuple[int, int] | None = None
    model_id: int = 0
    weights_hash: bytes = b""
    version: int = 2  # container format version the stream was read from


@dataclass(frozen=True)
class Encoded:
    """What an encoder returns: the sections and what the container should record."""

    sections: tuple[bytes, ...]
    #: the quality to record; None records none (a lossless codec, or a rate target reached
    #: by searching the encoder's trade-off)
    quality: int | None
    #: the decoder's output as the encoder computed it (when asked for), for verification
    reconstruction: np.ndarray | None = None
    stats: Mapping[str, float] = field(default_factory=dict)
    frames: int = 1
    frame_rate: tuple[int, int] | None = None


@runtime_checkable
class ImageCodec(Protocol):
    model_id: int
    weights_hash: bytes

    def encode(self, image: np.ndarray, quality: int | None, reconstruct: bool = False,
               progress: Progress | None = None, **options: Any) -> Encoded:
        """Code one image, HxWxC uint8 with C = 1 or 3 (``quality`` already checked against
        the codec's declared qualities, ``options`` against its declared options)."""
        ...

    def decode(self, sections: tuple[bytes, ...], info: StreamInfo) -> np.ndarray:
        """HxWxC uint8 (C = ``info.channels``) for one image, NxHxWxC for several frames."""
        ...


@runtime_checkable
class ImageSetCodec(Protocol):
    model_id: int
    weights_hash: bytes

    def encode_set(self, images: np.ndarray, reconstruct: bool = False, progress: Progress | None = None,
                   bits: np.ndarray | None = None) -> Encoded:
        """Code N same-size images (NxHxWxC uint8) into one stream; ``bits`` (float64,
        length N), if given, receives each image's share of the stream in bits."""
        ...

    def decode(self, sections: tuple[bytes, ...], info: StreamInfo) -> np.ndarray:
        ...


@runtime_checkable
class VideoCodec(Protocol):
    model_id: int
    weights_hash: bytes

    def encode_video(self, frames: np.ndarray, frame_rate: tuple[int, int], quality: int | None,
                     reconstruct: bool = False, progress: Progress | None = None, **options: Any) -> Encoded:
        """Code TxHxWx3 uint8 frames shown at ``frame_rate`` (numerator, denominator) frames/s."""
        ...

    def decode(self, sections: tuple[bytes, ...], info: StreamInfo) -> np.ndarray:
        ...


class CodecFactory(Protocol):
    def for_encoding(self) -> Any:
        """The codec (an ImageCodec, ImageSetCodec and/or VideoCodec) that codes new files."""
        ...

    def for_stream(self, info: StreamInfo) -> Any:
        """The codec that decodes a stream with this header (its model id and weights)."""
        ...

    def cache_key(self) -> str:
        """What decides the streams a new encode writes (the weights' hash, or a digest of
        the fitting code): evaluation caches are keyed by it."""
        ...


@dataclass(frozen=True)
class TrainRequest:
    """What ``lcodec train`` asks of a codec's trainer (``CodecSpec.trainer``), beside the
    codec's own training options, which arrive as keyword arguments."""

    data: Any  # Path: folder of training images (its validation split is left out)
    run_dir: Any  # Path: checkpoints; an existing one is resumed
    steps: int = 10_000
    time_budget: float | None = None  # seconds; the run ends at whichever comes first
    lr: float = 6e-4
    from_scratch: bool = False
    augment: Any = None  # codec.training.data.Augment; None for the default
    threads: int | None = None
    compile: bool = False
    export: Any = None  # Path: write weights and manifest here when done
    evaluate_on: Any = None  # Path: folder to measure the exported weights on
