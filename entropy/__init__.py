"""The one entropy-coding core: integer tables in, bytes out. No torch here."""

from .rans import RansError, decode, decode_categorical, encode, encode_categorical
from .tables import PRECISION, TableError, TableSet, gaussian_scale_table, gaussian_tables, pmf_to_freqs

__all__ = [
    "PRECISION", "RansError", "TableError", "TableSet", "decode", "decode_categorical", "encode",
    "encode_categorical", "gaussian_scale_table", "gaussian_tables", "pmf_to_freqs",
]
