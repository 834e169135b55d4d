"""Hyperprior image coding: pixels to integer symbols and table ids, and back.

Determinism: the decoder must derive exactly the table ids and means the encoder used.
Both sides compute them with :meth:`HyperpriorCodec._entropy_parameters`, from the same
integer hyper-latent, with torch pinned to one thread inside :func:`fixed_threads` (a
convolution's float sums can change with the thread split). The synthesis transform runs
under the same pin, so decoded pixels do not depend on the caller's thread setting.
The scale-to-table step compares float32 scales with the float32 bin edges stored in the
weights file, identically on both sides.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

import entropy

from ..errors import CodecError, CorruptStreamError, WeightsError
from .model import MeanScaleHyperprior
from .weights import MODEL_IDS, CodingTables, InstalledWeights, installed_weights, load_model_file

DECODE_THREADS = 1
#: the transforms run on the whole image at once; beyond this many pixels their activations
#: grow by about 200 bytes a pixel, so larger images are refused before anything is allocated
MAX_PIXELS = 1 << 24


@contextlib.contextmanager
def fixed_threads(n: int = DECODE_THREADS) -> Iterator[None]:
    """Run torch with exactly ``n`` intra-op threads, restoring the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class HyperpriorCodec:
    """One loaded weights file, ready to encode and decode."""

    name = "hyperprior"

    def __init__(self, model: MeanScaleHyperprior, tables: CodingTables, weights: InstalledWeights | None):
        self.model = model.eval()
        self.tables = tables
        self.weights = weights
        self.model_id = MODEL_IDS["hyperprior-lite"]
        self.weights_hash = weights.short_hash if weights else b"\0" * 8
        self.qualities = tuple(range(1, model.config.qualities + 1))

    # -- shared by both sides ------------------------------------------------------------
    def _gains(self, quality: int) -> tuple[torch.Tensor, ...]:
        if quality not in self.qualities:
            raise CodecError(f"quality must be one of {self.qualities[0]}..{self.qualities[-1]}, not {quality}")
        return self.model.gains(torch.tensor([quality - 1]))

    def _entropy_parameters(self, z_sym: np.ndarray, quality: int) -> tuple[torch.Tensor, np.ndarray]:
        """Means (float32 tensor) and scale-table ids (uint8) from the integer hyper-latent."""
        gain, _, _, inv_hgain = self._gains(quality)
        with fixed_threads():
            mu, sigma = self.model.entropy_parameters(torch.from_numpy(z_sym).float(), inv_hgain, gain)
        ids = np.searchsorted(self.tables.scales, sigma.numpy().astype(np.float32), side="left")
        return mu, np.minimum(ids, len(self.tables.scales) - 1).astype(np.uint8)

    def _z_table_ids(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(np.arange(shape[1], dtype=np.uint8)[None, :, None, None], shape)

    # -- encoder ---------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, image: np.ndarray, quality: int, reconstruct: bool = False
               ) -> tuple[list[bytes], np.ndarray | None]:
        """``image``: HxWx3 uint8. Returns the sections [hyper-latent, latent] and, when
        asked, the reconstruction the decoder must reproduce (from the encoder's own values)."""
        gain, _, hgain, _ = self._gains(quality)
        h, w = image.shape[:2]
        _check_size(w, h)
        x = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)[None].float() / 255.0
        x = pad_to(x, self.model.z_stride)
        y0 = self.model.g_a(x)
        z = self.model.h_a(y0) * hgain
        z_sym = _to_int32(z)
        mu, ids = self._entropy_parameters(z_sym, quality)
        y_sym = _to_int32(y0 * gain - mu)
        z_bytes = entropy.encode(z_sym, self._z_table_ids(z_sym.shape), self.tables.z)
        y_bytes = entropy.encode(y_sym, ids, self.tables.y)
        recon = self._synthesize(y_sym, mu, quality, h, w) if reconstruct else None
        return [z_bytes, y_bytes], recon

    def _synthesize(self, y_sym: np.ndarray, mu: torch.Tensor, quality: int, height: int, width: int) -> np.ndarray:
        _, inv_gain, _, _ = self._gains(quality)
        with fixed_threads():
            y_hat = (torch.from_numpy(y_sym).float() + mu) * inv_gain
            x_hat = self.model.g_s(y_hat)[0, :, :height, :width]
        pixels = torch.round(x_hat.clamp(0, 1) * 255.0).to(torch.uint8)
        return pixels.permute(1, 2, 0).contiguous().numpy()

    # -- decoder ---------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, sections: tuple[bytes, ...], width: int, height: int, quality: int) -> np.ndarray:
        if len(sections) != 2:
            raise CorruptStreamError(f"hyperprior stream has {len(sections)} sections, expected 2")
        self._gains(quality)
        _check_size(width, height)
        zs = self.model.z_stride
        ph, pw = -(-height // zs) * zs, -(-width // zs) * zs
        z_shape = (1, self.model.config.N, ph // zs, pw // zs)
        try:
            z_sym = entropy.decode(sections[0], self._z_table_ids(z_shape), self.tables.z)
            mu, ids = self._entropy_parameters(z_sym, quality)
            y_sym = entropy.decode(sections[1], ids, self.tables.y)
        except entropy.RansError as exc:
            raise CorruptStreamError(str(exc)) from None
        return self._synthesize(y_sym, mu, quality, height, width)


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise CodecError(f"{width}x{height} is larger than the hyperprior codes in one piece "
                         f"({MAX_PIXELS // 2**20} megapixels); split the image first")


def pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the bottom and right edges up to a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


def _to_int32(t: torch.Tensor) -> np.ndarray:
    r = torch.round(t)
    if not torch.isfinite(r).all() or r.abs().max() > 2**31 - 1:
        raise CodecError("latent values out of range: the image cannot be coded with these weights")
    return r.to(torch.int32).numpy()


def _pick_weights(short_hash: bytes | None) -> InstalledWeights:
    found = installed_weights()
    if not found:
        raise WeightsError("no hyperprior weights are installed")
    if short_hash is None:
        # the most trained of the installed files codes new images
        return max(found, key=lambda w: (int(w.manifest.get("steps", 0)), w.sha256))
    for w in found:
        if w.short_hash == short_hash:
            return w
    raise WeightsError(
        f"stream was made with hyperprior weights {short_hash.hex()}, which are not installed "
        f"(installed: {', '.join(w.sha256[:16] for w in found)}; add a folder with LCODEC_WEIGHTS)")


@functools.lru_cache(maxsize=4)
def _load(path: str, sha256: str) -> tuple[MeanScaleHyperprior, CodingTables]:
    return load_model_file(path, expected_sha256=sha256)  # type: ignore[arg-type]


def load_codec(short_hash: bytes | None = None) -> HyperpriorCodec:
    w = _pick_weights(short_hash)
    model, tables = _load(str(w.path), w.sha256)
    return HyperpriorCodec(model, tables, w)


def load_default() -> "HyperpriorFactory":
    return HyperpriorFactory()


class HyperpriorFactory:
    """What the registry hands out: picks weights for encoding, or by a stream's hash."""

    name = "hyperprior"

    def for_encoding(self) -> HyperpriorCodec:
        return load_codec(None)

    def for_stream(self, model_id: int, short_hash: bytes) -> HyperpriorCodec:
        if model_id not in MODEL_IDS.values():
            raise CodecError(f"stream uses hyperprior model id {model_id}, unknown to this lcodec")
        return load_codec(short_hash)
