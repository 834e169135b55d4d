"""The one exception family the library raises on purpose."""


class CodecError(Exception):
    """Anything lcodec refuses or cannot do: bad input, corrupt streams, missing weights.

    The message is one line meant for the person who ran the command.
    """


class CorruptStreamError(CodecError):
    """The bytes are not a valid lcodec stream (bad magic, CRC, lengths or entropy data)."""


class UnsupportedImageError(CodecError):
    """The image cannot be coded: unreadable, wrong mode, alpha, bit depth, or too large."""


class WeightsError(CodecError):
    """Weights are missing, not installed, or fail their integrity check."""
