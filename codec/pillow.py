"""A Pillow plugin for lcodec streams: ``import codec.pillow``, then ``Image.open("x.lcd")``
decodes and ``img.save("x.lcd", quality=4, codec="hyperprior")`` encodes.

Opening reads only the header (size, mode); the pixels are decoded by ``load()``, as Pillow
does for its own formats. Saving takes the encoder's parameters from ``save()``'s keywords:
``codec`` (default: the default codec), ``quality``, and any encoder option the codec
declares (``refine="fast"``). Streams of several images (image sets) are refused on open:
use :func:`codec.decompress` for them. Errors from decoding or encoding are
:class:`codec.CodecError`; a file that is not an lcodec stream is left to Pillow's other
plugins.

    >>> import codec.pillow
    >>> from PIL import Image
    >>> Image.open("photo.lcd").convert("L").save("gray.png")
"""

from __future__ import annotations

from typing import IO, Any

import numpy as np
from PIL import Image, ImageFile

from .api import MAX_STREAM_BYTES, compress, decompress
from .container import MAGIC, read_header
from .errors import CodecError

FORMAT = "LCODEC"
EXTENSION = ".lcd"


def _accept(prefix: bytes) -> bool:
    return prefix[:len(MAGIC)] == MAGIC


class LcodecImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "lcodec learned image stream"

    def _open(self) -> None:
        assert self.fp is not None
        data = self.fp.read(MAX_STREAM_BYTES + 1)
        if len(data) > MAX_STREAM_BYTES:
            raise SyntaxError("larger than any lcodec stream")
        try:
            header = read_header(data)
        except CodecError as exc:
            raise SyntaxError(f"not a valid lcodec stream: {exc}") from None
        if header.frames > 1:
            raise SyntaxError(f"an lcodec stream of {header.frames} images; decode it with codec.decompress")
        if header.channels not in (1, 3):
            raise SyntaxError(f"an lcodec stream of {header.channels} channels")
        self._size = (header.width, header.height)
        self._mode = "RGB" if header.channels == 3 else "L"
        self.info["lcodec_quality"] = header.quality if header.has_quality else None
        self._stream: bytes | None = data
        self.tile = []

    def load(self) -> Any:
        if getattr(self, "_stream", None) is not None:
            pixels = decompress(self._stream)
            img = Image.fromarray(np.ascontiguousarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels),
                                  self.mode)
            self.im = img.im
            self._stream = None
        return super().load()


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    params = dict(im.encoderinfo)
    codec_name = params.pop("codec", None)
    quality = params.pop("quality", None)
    options = {k: v for k, v in params.items() if k in _encoder_option_names()}
    fp.write(compress(im, codec=codec_name, quality=quality, **options))


def _encoder_option_names() -> set[str]:
    from .registry import all_options

    return set(all_options())


Image.register_open(FORMAT, LcodecImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, EXTENSION)
Image.register_mime(FORMAT, "image/x-lcodec")
