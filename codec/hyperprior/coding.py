"""Hyperprior image coding: pixels to integer symbols and table ids, and back.

Determinism: the decoder must derive exactly the table ids the encoder used. Both sides
compute them with :meth:`HyperpriorCodec._entropy_parameters`, from the same integer
hyper-latent, through the integer hyper-synthesis (:mod:`codec.hyperprior.integer`), whose
outputs are the same on every machine and thread count; the scale-to-table step compares
float32 scales with the float32 bin edges stored in the weights file. Streams therefore
decode anywhere. The synthesis transform is float: it runs with torch pinned to one thread
inside :func:`fixed_threads`, so decoded pixels do not depend on the caller's thread setting
(on another CPU they may differ by rounding, never the decoded latents).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import entropy

from ..channels import from_rgb, to_rgb
from ..determinism import fixed_threads
from ..interfaces import Encoded, Progress, StreamInfo
from ..refine import RefineProblem, parse_refine, refine
from ..errors import CodecError, CorruptStreamError
from .model import MeanScaleHyperprior
from ..weightfiles import InstalledWeights, pick_weights
from .weights import MODEL_IDS, RETIRED_MODEL_IDS, CodingTables, installed_weights, load_model_file

#: tiles are TILE x TILE latents (1024 x 1024 pixels); the synthesis of a tile sees Y_HALO
#: latents of its neighbours and the hyper-synthesis Z_HALO hyper-latents, so tiles leave no
#: seams. These three numbers are part of the stream format (the parameter section).
TILE = 64
Y_HALO = 4
Z_HALO = 2
#: pixels of context around a tile for the analysis transform (encoder only)
X_HALO = 64
_PARAMS = struct.Struct("<HBB")


class HyperpriorCodec:
    """One loaded weights file, ready to encode and decode."""

    name = "hyperprior"

    def __init__(self, model: MeanScaleHyperprior, tables: CodingTables, weights: InstalledWeights | None):
        self.model = model.eval()
        for p in self.model.parameters():  # coding never trains; refinement differentiates the latent only
            p.requires_grad_(False)
        self.tables = tables
        self.weights = weights
        self.model_id = MODEL_IDS["hyperprior-lite"]
        self.weights_hash = weights.short_hash if weights else b"\0" * 8
        #: the qualities these weights were trained for (the registry declares which are offered)
        self.trained_qualities = tuple(range(1, model.config.qualities + 1))

    # -- shared by both sides ------------------------------------------------------------
    def _check_quality(self, quality: int) -> None:
        if quality not in self.trained_qualities:
            raise CodecError(f"these hyperprior weights have qualities 1..{self.trained_qualities[-1]}, "
                             f"not {quality}")

    def _gains(self, quality: int) -> tuple[torch.Tensor, ...]:
        self._check_quality(quality)
        return self.model.gains(torch.tensor([quality - 1]))

    def _entropy_parameters(self, z_sym: np.ndarray, quality: int) -> tuple[torch.Tensor, np.ndarray]:
        """Means (float32 tensor) and scale-table ids (uint8) from the integer hyper-latent
        (``quality`` already checked by the caller)."""
        mu, sigma = self.tables.hyper(z_sym, quality)
        ids = np.searchsorted(self.tables.scales, sigma, side="left")
        return torch.from_numpy(mu), np.minimum(ids, len(self.tables.scales) - 1).astype(np.uint8)

    def _z_table_ids(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(np.arange(shape[1], dtype=np.uint8)[None, :, None, None], shape)

    # -- tiles ---------------------------------------------------------------------------
    def _tile_parameters(self, z_sym: np.ndarray, grid: "TileGrid", r: int, c: int, quality: int
                         ) -> tuple[torch.Tensor, np.ndarray]:
        """Means and table ids of one tile, from the hyper-latent around it (Z_HALO of context)."""
        y0, y1, x0, x1 = grid.y_box(r, c)
        zr0, zr1 = max(0, y0 // 4 - Z_HALO), min(grid.hz, -(-y1 // 4) + Z_HALO)
        zc0, zc1 = max(0, x0 // 4 - Z_HALO), min(grid.wz, -(-x1 // 4) + Z_HALO)
        mu, ids = self._entropy_parameters(np.ascontiguousarray(z_sym[:, :, zr0:zr1, zc0:zc1]), quality)
        oy, ox = y0 - 4 * zr0, x0 - 4 * zc0
        return (mu[:, :, oy:oy + y1 - y0, ox:ox + x1 - x0].contiguous(),
                np.ascontiguousarray(ids[:, :, oy:oy + y1 - y0, ox:ox + x1 - x0]))

    def _synthesize(self, grid: "TileGrid", tiles: "Callable[[int, int], torch.Tensor]",
                    quality: int, height: int, width: int) -> np.ndarray:
        """Pixels from each tile's decoded gained latent (1, M, h, w), one row of tiles at a time.

        Each tile is synthesised from its latents plus Y_HALO latents of its neighbours, so
        there are no seams, and only three rows of tiles of the latent are held at once.
        """
        _, inv_gain, _, _ = self._gains(quality)
        out = np.empty((height, width, 3), dtype=np.uint8)
        rows: dict[int, torch.Tensor] = {}

        def load_row(r: int) -> None:
            strip = torch.empty(1, self.model.config.M, grid.y_box(r, 0)[1] - grid.y_box(r, 0)[0], grid.wy)
            for c in range(grid.cols):
                _, _, x0, x1 = grid.y_box(r, c)
                strip[:, :, :, x0:x1] = tiles(r, c) * inv_gain
            rows[r] = strip

        load_row(0)
        for r in range(grid.rows):
            if r + 1 < grid.rows:
                load_row(r + 1)
            rows.pop(r - 2, None)
            band = torch.cat([rows[i] for i in range(max(0, r - 1), min(grid.rows, r + 2))], dim=2)
            band_y0 = grid.y_box(max(0, r - 1), 0)[0]
            y0, y1, _, _ = grid.y_box(r, 0)
            ry0, ry1 = max(0, y0 - Y_HALO), min(grid.hy, y1 + Y_HALO)
            for c in range(grid.cols):
                _, _, x0, x1 = grid.y_box(r, c)
                rx0, rx1 = max(0, x0 - Y_HALO), min(grid.wy, x1 + Y_HALO)
                region = band[:, :, ry0 - band_y0:ry1 - band_y0, rx0:rx1]
                with fixed_threads():
                    x_hat = self.model.g_s(region)
                s = self.model.y_stride
                py0, px0 = (y0 - ry0) * s, (x0 - rx0) * s
                oy0, ox0 = y0 * s, x0 * s
                oy1, ox1 = min(height, y1 * s), min(width, x1 * s)
                if oy1 <= oy0 or ox1 <= ox0:
                    continue  # a tile made only of padding
                crop = x_hat[0, :, py0:py0 + oy1 - oy0, px0:px0 + ox1 - ox0]
                pixels = torch.round(crop.clamp(0, 1) * 255.0).to(torch.uint8)
                out[oy0:oy1, ox0:ox1] = pixels.permute(1, 2, 0).numpy()
        return out

    # -- encoder ---------------------------------------------------------------------------
    def encode(self, image: np.ndarray, quality: int | None, reconstruct: bool = False,
               progress: Progress | None = None, refine: str | None = None) -> Encoded:
        """The :class:`~codec.interfaces.ImageCodec` encoder: grayscale is coded as RGB.
        ``refine``: encode-time latent refinement (:mod:`codec.refine`), ``fast``, ``slow``
        or an iteration count."""
        if quality is None:
            raise CodecError("the hyperprior needs a quality")
        sections, recon = self.encode_rgb(to_rgb(image), quality, reconstruct, parse_refine(refine), progress)
        if recon is not None:
            recon = from_rgb(recon, image.shape[2])
        return Encoded(tuple(sections), quality, recon)

    def decode(self, sections: tuple[bytes, ...], info: StreamInfo) -> np.ndarray:
        if info.quality is None:
            raise CorruptStreamError("hyperprior stream records no quality")
        return from_rgb(self.decode_rgb(sections, info.width, info.height, info.quality), info.channels)

    @torch.no_grad()
    def encode_rgb(self, image: np.ndarray, quality: int, reconstruct: bool = False, refine_iterations: int = 0,
                   progress: Progress | None = None) -> tuple[list[bytes], np.ndarray | None]:
        """``image``: HxWx3 uint8. Returns the sections and, when asked, the reconstruction
        the decoder must reproduce (computed from the encoder's own symbols and means).

        Sections: [parameters, hyper-latent, latent of tile 0, tile 1, ...] (tiles in raster
        order). The analysis runs tile by tile with X_HALO pixels of context.
        """
        gain, _, hgain, _ = self._gains(quality)
        h, w = image.shape[:2]
        grid = TileGrid.for_image(w, h)
        x = torch.from_numpy(pad_to(image, self.model.z_stride)).permute(2, 0, 1)[None]
        s = self.model.y_stride
        y0 = torch.empty(1, self.model.config.M, grid.hy, grid.wy)
        for r in range(grid.rows):
            for c in range(grid.cols):
                a0, a1, b0, b1 = grid.y_box(r, c)
                p0, p1 = max(0, a0 * s - X_HALO), min(grid.hy * s, a1 * s + X_HALO)
                q0, q1 = max(0, b0 * s - X_HALO), min(grid.wy * s, b1 * s + X_HALO)
                lat = self.model.g_a(x[:, :, p0:p1, q0:q1].float() / 255.0)
                y0[:, :, a0:a1, b0:b1] = lat[:, :, a0 - p0 // s:a1 - p0 // s, b0 - q0 // s:b1 - q0 // s]
        z_sym = _to_int32(self.model.h_a(y0) * hgain)
        sections = [grid.params(), entropy.encode(z_sym, self._z_table_ids(z_sym.shape), self.tables.z)]
        y = y0 * gain
        if refine_iterations:
            y = self._refined(y, x, z_sym, grid, quality, h, w, refine_iterations, progress)
        coded: dict[tuple[int, int], torch.Tensor] = {}
        for r in range(grid.rows):
            for c in range(grid.cols):
                a0, a1, b0, b1 = grid.y_box(r, c)
                data, y_hat = self._encode_tile(y[:, :, a0:a1, b0:b1], z_sym, grid, r, c, quality)
                sections.append(data)
                if reconstruct:
                    coded[r, c] = y_hat
        recon = self._synthesize(grid, lambda r, c: coded[r, c], quality, h, w) if reconstruct else None
        return sections, recon

    # -- one tile of the latent: the hooks a context model replaces ----------------------
    def _encode_tile(self, y: torch.Tensor, z_sym: np.ndarray, grid: "TileGrid", r: int, c: int, quality: int
                     ) -> tuple[bytes, torch.Tensor]:
        """The gained latent of tile (r, c) -> its section and the decoded gained latent."""
        mu, ids = self._tile_parameters(z_sym, grid, r, c, quality)
        y_sym = _to_int32(y - mu)
        return entropy.encode(y_sym, ids, self.tables.y), torch.from_numpy(y_sym).float() + mu

    def _decode_tile(self, data: bytes, z_sym: np.ndarray, grid: "TileGrid", r: int, c: int, quality: int
                     ) -> torch.Tensor:
        """Inverse of :meth:`_encode_tile`: the decoded gained latent of tile (r, c)."""
        mu, ids = self._tile_parameters(z_sym, grid, r, c, quality)
        try:
            return torch.from_numpy(entropy.decode(data, ids, self.tables.y)).float() + mu
        except entropy.RansError as exc:
            raise CorruptStreamError(f"tile {r},{c}: {exc}") from None

    def _refined(self, y: torch.Tensor, x: torch.Tensor, z_sym: np.ndarray, grid: "TileGrid", quality: int,
                 height: int, width: int, iterations: int, progress: Progress | None) -> torch.Tensor:
        """The gained latent after encode-time refinement against this image (one tile)."""
        if grid.rows * grid.cols != 1:
            raise CodecError(f"refinement codes images of at most {TILE * 16}x{TILE * 16} pixels (one tile), "
                             f"not {width}x{height}")
        mu, ids = self._tile_parameters(z_sym, grid, 0, 0, quality)
        _, inv_gain, _, _ = self._gains(quality)
        scale = torch.from_numpy(self.tables.scales.astype(np.float32)[ids])
        target = x[:, :, :height, :width].float() / 255.0

        def synthesize(latent: torch.Tensor) -> torch.Tensor:
            return self.model.g_s(latent * inv_gain)[:, :, :height, :width].clamp(0.0, 1.0)

        problem = RefineProblem(latent=y, mean=mu, scale=scale, synthesize=synthesize, target=target,
                                lam=float(self.model.config.lambdas[quality - 1]))
        with torch.enable_grad():
            return refine(problem, iterations, progress=progress)

    # -- decoder ---------------------------------------------------------------------------
    @torch.no_grad()
    def decode_rgb(self, sections: tuple[bytes, ...], width: int, height: int, quality: int) -> np.ndarray:
        self._check_quality(quality)
        if not sections:
            raise CorruptStreamError("hyperprior stream has no sections")
        grid = TileGrid.from_params(sections[0], width, height)
        if len(sections) != 2 + grid.rows * grid.cols:
            raise CorruptStreamError(f"hyperprior stream has {len(sections)} sections, expected "
                                     f"{2 + grid.rows * grid.cols} for {grid.rows}x{grid.cols} tiles")
        try:
            z_shape = (1, self.model.config.N, grid.hz, grid.wz)
            z_sym = entropy.decode(sections[1], self._z_table_ids(z_shape), self.tables.z)

            def tile(r: int, c: int) -> torch.Tensor:
                return self._decode_tile(sections[2 + r * grid.cols + c], z_sym, grid, r, c, quality)

            return self._synthesize(grid, tile, quality, height, width)
        except entropy.RansError as exc:
            raise CorruptStreamError(str(exc)) from None


@dataclass(frozen=True)
class TileGrid:
    """The latent ``y`` (at 1/16 of the padded image) cut into tiles of ``tile`` latents."""

    hy: int
    wy: int
    tile: int = TILE

    @classmethod
    def for_image(cls, width: int, height: int, tile: int = TILE) -> "TileGrid":
        return cls(-(-height // 64) * 4, -(-width // 64) * 4, tile)

    @classmethod
    def from_params(cls, params: bytes, width: int, height: int) -> "TileGrid":
        if len(params) != _PARAMS.size:
            raise CorruptStreamError("hyperprior parameter section has the wrong size")
        tile, y_halo, z_halo = _PARAMS.unpack(params)
        if (tile, y_halo, z_halo) != (TILE, Y_HALO, Z_HALO):
            raise CorruptStreamError(f"hyperprior tiling {tile}/{y_halo}/{z_halo} is not supported by this lcodec")
        return cls.for_image(width, height, tile)

    def params(self) -> bytes:
        return _PARAMS.pack(self.tile, Y_HALO, Z_HALO)

    @property
    def hz(self) -> int:
        return self.hy // 4

    @property
    def wz(self) -> int:
        return self.wy // 4

    @property
    def rows(self) -> int:
        return -(-self.hy // self.tile)

    @property
    def cols(self) -> int:
        return -(-self.wy // self.tile)

    def y_box(self, r: int, c: int) -> tuple[int, int, int, int]:
        t = self.tile
        return r * t, min(self.hy, (r + 1) * t), c * t, min(self.wy, (c + 1) * t)


def pad_to(image: np.ndarray, multiple: int) -> np.ndarray:
    """Copy of an HxWxC image, edge-padded on the bottom and right to a multiple of ``multiple``."""
    h, w = image.shape[:2]
    return np.pad(image, ((0, (-h) % multiple), (0, (-w) % multiple), (0, 0)), mode="edge")


def _to_int32(t: torch.Tensor) -> np.ndarray:
    r = torch.round(t)
    if not torch.isfinite(r).all() or r.abs().max() > 2**31 - 1:
        raise CodecError("latent values out of range: the image cannot be coded with these weights")
    return r.to(torch.int32).numpy()


def _pick_weights(short_hash: bytes | None) -> InstalledWeights:
    return pick_weights(installed_weights(), short_hash, "hyperprior")


@functools.lru_cache(maxsize=4)
def _load(path: str, sha256: str) -> tuple[MeanScaleHyperprior, CodingTables]:
    return load_model_file(path, expected_sha256=sha256, coding_only=True)  # type: ignore[arg-type]


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

    def cache_key(self) -> str:
        return _pick_weights(None).sha256[:16]

    def for_stream(self, info: StreamInfo) -> HyperpriorCodec:
        model_id, short_hash = info.model_id, info.weights_hash
        if model_id in RETIRED_MODEL_IDS:
            raise CodecError(f"stream uses hyperprior model id {model_id} ({RETIRED_MODEL_IDS[model_id]}), "
                             "which this lcodec no longer decodes")
        if model_id not in MODEL_IDS.values():
            raise CodecError(f"stream uses hyperprior model id {model_id}, unknown to this lcodec")
        return load_codec(short_hash)
