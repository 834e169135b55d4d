"""The one entropy-coding core: integer tables in, bytes out. No torch here."""

from .rans import GroupDecoder, GroupEncoder, RansError, RowDecoder, RowEncoder, decode, decode_categorical, encode, encode_categorical
from .tables import (PRECISION, TableError, TableSet, gaussian_scale_table, gaussian_tables, laplace_tables, pmf_to_freqs,
                     pmf_rows_to_freqs)

__all__ = [
    "GroupDecoder", "GroupEncoder", "PRECISION", "RansError", "RowDecoder", "RowEncoder", "TableError", "TableSet", "decode", "decode_categorical", "encode",
    "encode_categorical", "gaussian_scale_table", "gaussian_tables", "laplace_tables", "pmf_rows_to_freqs", "pmf_to_freqs",
]
