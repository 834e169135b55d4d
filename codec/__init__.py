"""lcodec: learned image compression with exact decoding.

>>> import codec
>>> data = codec.compress("photo.png", codec="hyperprior", quality=3)   # doctest: +SKIP
>>> pixels = codec.decompress(data)                                      # doctest: +SKIP

Importing this package is cheap; torch and the models load on first use.
"""

from .api import EncodedImage, compress, compress_image, compress_image_set, decompress, info
from .errors import CodecError, CorruptStreamError, UnsupportedImageError, WeightsError
from .registry import codecs, get_codec

__all__ = [
    "CodecError", "CorruptStreamError", "EncodedImage", "UnsupportedImageError", "WeightsError",
    "codecs", "compress", "compress_image", "compress_image_set", "decompress", "get_codec", "info",
]
__version__ = "0.1.0"
