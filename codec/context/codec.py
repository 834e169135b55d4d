"""Image coding with a sliced context model: the hyperprior's transforms and tiles, the
family's entropy model (MLICv2-lite, S2LIC-lite).

The stream is the hyperprior's layout (parameters, hyper-latent, one section per tile of the
latent); each tile's section is one rANS stream of ``2 x slices`` groups (slices, then
anchors and non-anchors within each), coded by :mod:`codec.context.coding`. Table ids come
from the integer hyper-synthesis and the integer context networks (the loop of
:mod:`codec.context.tiles` with the family's contexts), so they repeat on every machine. The
contexts of a tile see only that tile, so tiles decode independently, as in the hyperprior.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch

from ..errors import CodecError
from ..hyperprior.coding import TILE, Z_HALO, HyperpriorCodec, TileGrid
from ..interfaces import Progress, StreamInfo
from ..refine import RefineProblem, gaussian_bits, refine
from ..weightfiles import InstalledWeights, pick_weights
from . import coding as staged
from .family import ContextFamily
from .slices import SlicedEntropyModel
from .tiles import IntegerSlicedModel, SlicedTile
from .weights import ContextWeights, float_entropy_model, installed_weights, load_weights_file


class ContextCodec(HyperpriorCodec):
    """One loaded weights file of a context family, ready to encode and decode."""

    def __init__(self, loaded: ContextWeights, weights: InstalledWeights | None):
        super().__init__(loaded.hyperprior, loaded.tables, weights)
        self.family = loaded.family
        self.name = loaded.family.name
        self.model_id = loaded.family.model_id
        self.net: IntegerSlicedModel = loaded.entropy_model
        self.inv_gain = loaded.inv_gain
        self.loaded = loaded
        self._em: SlicedEntropyModel | None = None

    def _float_model(self) -> SlicedEntropyModel:
        if self._em is None:
            self._em = float_entropy_model(self.loaded)
            for p in self._em.parameters():
                p.requires_grad_(False)
        return self._em

    def _refined(self, y: torch.Tensor, x: torch.Tensor, z_sym: np.ndarray, grid: TileGrid, quality: int,
                 height: int, width: int, iterations: int, progress: Progress | None) -> torch.Tensor:
        """Encode-time refinement through the context model: the float entropy model (the
        integer one's twin) gives each relaxed latent's rate, its contexts following the
        slices decoded before, so the refined latent is optimised for the contexts it will
        meet (Yang et al. 2020's SGA, as for the hyperprior)."""
        if grid.rows * grid.cols != 1:
            raise CodecError(f"refinement codes images of at most {TILE * 16}x{TILE * 16} pixels (one tile), "
                             f"not {width}x{height}")
        tile = self._tile_model(z_sym, grid, 0, 0, quality)
        q = quality - 1
        hyper = torch.from_numpy(tile.hyper.transpose(2, 0, 1)[None].astype(np.float32) / 4096.0)
        gain = torch.from_numpy(self.tables.hyper.gain[q].copy())[None, :, None, None]
        ctx_inv_gain = torch.from_numpy(self.inv_gain[q].copy())[None, :, None, None]
        _, inv_gain, _, _ = self._gains(quality)
        em = self._float_model()
        qi = torch.tensor([q])
        target = x[:, :, :height, :width].float() / 255.0

        def context(latent: torch.Tensor, quantize: Callable[[torch.Tensor], torch.Tensor]
                    ) -> tuple[torch.Tensor, torch.Tensor]:
            out = em(latent, hyper, gain, ctx_inv_gain, qi, quantize)
            return gaussian_bits(out["y_q"], out["mu"], out["sigma"]), out["y_hat"]

        def synthesize(latent: torch.Tensor) -> torch.Tensor:
            return self.model.g_s(latent * inv_gain)[:, :, :height, :width].clamp(0.0, 1.0)

        start = em(y, hyper, gain, ctx_inv_gain, qi)
        problem = RefineProblem(latent=y, mean=start["mu"], scale=start["sigma"], synthesize=synthesize,
                                target=target, lam=float(self.model.config.lambdas[q]), context=context)
        with torch.enable_grad():
            return refine(problem, iterations, progress=progress)

    def _tile_model(self, z_sym: np.ndarray, grid: TileGrid, r: int, c: int, quality: int) -> SlicedTile:
        """The coding state of tile (r, c): hyper-synthesis outputs around it (Z_HALO of context),
        cropped to the tile."""
        y0, y1, x0, x1 = grid.y_box(r, c)
        zr0, zr1 = max(0, y0 // 4 - Z_HALO), min(grid.hz, -(-y1 // 4) + Z_HALO)
        zc0, zc1 = max(0, x0 // 4 - Z_HALO), min(grid.wz, -(-x1 // 4) + Z_HALO)
        self._check_quality(quality)
        hyper = self.tables.hyper.fixed_outputs(np.ascontiguousarray(z_sym[:, :, zr0:zr1, zc0:zc1]), quality)
        oy, ox = y0 - 4 * zr0, x0 - 4 * zc0
        hyper = hyper[:, oy:oy + y1 - y0, ox:ox + x1 - x0]
        q = quality - 1
        return self.net.tile(hyper, quality, self.tables.hyper.gain[q], self.inv_gain[q], self.tables.scales)

    def _encode_tile(self, y: torch.Tensor, z_sym: np.ndarray, grid: TileGrid, r: int, c: int, quality: int
                     ) -> tuple[bytes, torch.Tensor]:
        tile = self._tile_model(z_sym, grid, r, c, quality)
        latent = y[0].permute(1, 2, 0).numpy().astype(np.float32)
        data = staged.encode(tile, latent, self.tables.y)
        return data, torch.from_numpy(tile.y_hat).permute(2, 0, 1)[None].contiguous()

    def _decode_tile(self, data: bytes, z_sym: np.ndarray, grid: TileGrid, r: int, c: int, quality: int
                     ) -> torch.Tensor:
        tile = self._tile_model(z_sym, grid, r, c, quality)
        staged.decode(tile, data, self.tables.y)
        return torch.from_numpy(tile.y_hat).permute(2, 0, 1)[None].contiguous()


def _pick_weights(family: ContextFamily, short_hash: bytes | None) -> InstalledWeights:
    return pick_weights(installed_weights(family), short_hash, family.name)


@functools.lru_cache(maxsize=4)
def _load(family: ContextFamily, path: str, sha256: str) -> ContextWeights:
    return load_weights_file(family, path, expected_sha256=sha256)  # type: ignore[arg-type]


def load_codec(family: ContextFamily, short_hash: bytes | None = None) -> ContextCodec:
    w = _pick_weights(family, short_hash)
    return ContextCodec(_load(family, str(w.path), w.sha256), w)


class ContextFactory:
    """What the registry hands out: picks weights for encoding, or by a stream's hash."""

    def __init__(self, family: ContextFamily):
        self.family = family
        self.name = family.name

    def for_encoding(self) -> ContextCodec:
        return load_codec(self.family, None)

    def cache_key(self) -> str:
        return _pick_weights(self.family, None).sha256[:16]

    def for_stream(self, info: StreamInfo) -> ContextCodec:
        if info.model_id not in self.family.model_ids.values():
            raise CodecError(f"stream uses {self.family.name} model id {info.model_id}, unknown to this lcodec")
        return load_codec(self.family, info.weights_hash)
