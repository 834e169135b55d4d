"""Coding and decoding of the overfitted codec (fitting: :mod:`codec.overfit.model`).

Stream sections (FORMAT.md has the normative layout):

0. parameters: preset id, iterations run, and one Gaussian table id per network tensor;
1. ARM weights, integers (fixed point, 2^-8), coded with those tables;
2. synthesis weights, integers (step 2^-SYN_FRAC), likewise;
3. the latent grids, one stream of wavefront groups (:class:`entropy.GroupEncoder`): group
   ``t`` holds the values with ``c + 2r = t`` of every grid that has them (grid 0 first),
   each coded as ``value - base`` with the Laplace table the integer ARM picks from the
   values decoded before it.

Exactness: the ARM is integer arithmetic, so tables match bit for bit anywhere. The
synthesis runs in float32 numpy on the same integer latents and the same dequantised weights
on both sides, with BLAS pinned to one thread; the encoder's reconstruction is produced by
the decoder's own function. Decoding imports no torch; only fitting does
(:mod:`codec.overfit.model`, loaded on the first encode).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

import entropy

from ..container import CODEC_IDS, Header, container_overhead
from ..errors import CodecError, CorruptStreamError, UnsupportedImageError
from .runtime import (ARM_SHAPES, CONTEXT, MEAN_STEPS, SCALE_LEVELS, SCALE_MAX, SCALE_MIN, SYNTHESIS_SHAPES,
                      WAVE, FixedPointArm, grid_shapes, synthesize)

MODEL_ID = 3  # 1: synthesis weights in steps of 2^-7; 2: torch's bicubic and convolutions (neither read)
SYN_FRAC = 9  # synthesis weights are multiples of 2^-9 (coarser steps cost more PSNR than they save)
#: lambdas of the quality levels (the hyperprior's, so a quality means the same trade-off)
LAMBDAS = (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483)
PRESETS = {"fast": 400, "medium": 1500, "slow": 5000}
PRESET_IDS = {"fast": 1, "medium": 2, "slow": 3, "custom": 0}
#: zero-centred Laplace tables for weight integers, by scale
WEIGHT_SCALES = entropy.gaussian_scale_table(0.5, 2048.0, 40)
_PARAMS = struct.Struct("<BI")
TARGET_TRIALS = 6
#: the largest image this codec takes (fitting memory grows with the image; 4096x4096)
MAX_PIXELS = 1 << 24


def _latent_tables() -> entropy.TableSet:
    return entropy.laplace_tables(entropy.gaussian_scale_table(SCALE_MIN, SCALE_MAX, SCALE_LEVELS), MEAN_STEPS)


_TABLES: dict[str, entropy.TableSet] = {}


def tables() -> tuple[entropy.TableSet, entropy.TableSet]:
    """(latent tables, weight tables), built once from fixed formulas."""
    if not _TABLES:
        _TABLES["latent"] = _latent_tables()
        _TABLES["weights"] = entropy.laplace_tables(WEIGHT_SCALES, 1)
    return _TABLES["latent"], _TABLES["weights"]


# -- wavefronts ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Wavefronts:
    """The coding order of a set of grids, as indices into one flat buffer that holds every
    grid zero-padded (2 rows on top, 2 columns each side), grid after grid.

    Values are ordered by wavefront ``t = c + WAVE * r``, then grid, then row: step ``t`` is
    ``slot[bounds[t]:bounds[t + 1]]``, and :meth:`context` gives the buffer indices of each
    value's causal neighbours, all of them decoded at earlier steps or padding.
    """

    shapes: tuple[tuple[int, int], ...]
    starts: tuple[int, ...]  # where each padded grid begins in the buffer
    size: int  # buffer length
    slot: np.ndarray  # (n,) buffer index of each value, in coding order
    source: np.ndarray  # (n,) index of each value in the grids' concatenated raster order
    grid: np.ndarray  # (n,) grid of each value, in coding order
    offsets: np.ndarray  # (grids, len(CONTEXT)) buffer offsets of the neighbours, per grid
    bounds: np.ndarray  # step t is [bounds[t], bounds[t + 1])

    @classmethod
    def for_grids(cls, shapes: list[tuple[int, int]]) -> "Wavefronts":
        starts, size = [], 0
        keys, slots = [], []
        for g, (h, w) in enumerate(shapes):
            r, c = np.divmod(np.arange(h * w, dtype=np.int64), w)
            keys.append((c + WAVE * r) * len(shapes) + g)
            slots.append(size + (r + 2) * (w + 4) + c + 2)
            starts.append(size)
            size += (h + 2) * (w + 4)
        key = np.concatenate(keys)
        # the concatenation is in raster order within each grid, grid after grid, so a stable
        # sort by (t, grid) orders each group by grid, then row
        source = np.argsort(key, kind="stable")
        t = key[source] // len(shapes)
        bounds = np.searchsorted(t, np.arange(int(t[-1]) + 2), side="left")
        offsets = np.array([[dr * (w + 4) + dc for dr, dc in CONTEXT] for _, w in shapes], dtype=np.int64)
        return cls(tuple(shapes), tuple(starts), size, np.concatenate(slots)[source], source,
                   key[source] % len(shapes), offsets, bounds)

    def context(self, a: int, b: int) -> np.ndarray:
        """(b - a, len(CONTEXT)) buffer indices of the neighbours of values a..b (coding order)."""
        return self.slot[a:b, None] + self.offsets[self.grid[a:b]]

    @property
    def steps(self) -> int:
        return len(self.bounds) - 1

    def grids(self, buffer: np.ndarray) -> list[np.ndarray]:
        return [buffer[s:s + (h + 2) * (w + 4)].reshape(h + 2, w + 4)[2:, 2:-2].copy()
                for s, (h, w) in zip(self.starts, self.shapes)]


def code_grids(arm: FixedPointArm, grids: list[np.ndarray], latent_tables: entropy.TableSet) -> bytes:
    """Integer latent grids -> one stream of wavefront groups (see the module doc)."""
    wf = Wavefronts.for_grids([(g.shape[0], g.shape[1]) for g in grids])
    values = np.concatenate([g.astype(np.int64).ravel() for g in grids])[wf.source]  # coding order
    buffer = np.zeros(wf.size, dtype=np.int64)
    buffer[wf.slot] = values
    base = np.empty(values.size, dtype=np.int64)
    ids = np.empty(values.size, dtype=np.int64)
    for a in range(0, values.size, 1 << 18):  # every context is known at the encoder: big batches
        b = min(values.size, a + (1 << 18))
        base[a:b], ids[a:b] = arm(buffer[wf.context(a, b)])
    enc = entropy.GroupEncoder(latent_tables)
    for t in range(wf.steps - 1, -1, -1):
        a, b = wf.bounds[t], wf.bounds[t + 1]
        enc.push_reverse(values[a:b] - base[a:b], ids[a:b])
    return enc.finish()


def decode_grids(arm: FixedPointArm, data: bytes, shapes: list[tuple[int, int]],
                 latent_tables: entropy.TableSet) -> list[np.ndarray]:
    """Inverse of :func:`code_grids`: step ``t`` decodes wavefront ``t`` of every grid that
    has one, with one ARM evaluation and one group of the stream."""
    wf = Wavefronts.for_grids(shapes)
    buffer = np.zeros(wf.size, dtype=np.int64)
    slot, bounds = wf.slot, wf.bounds.tolist()
    dec = entropy.GroupDecoder(data, latent_tables)
    for t in range(wf.steps):
        a, b = bounds[t], bounds[t + 1]
        base, ids = arm(buffer[wf.context(a, b)])
        buffer[slot[a:b]] = dec.pop(ids) + base
    dec.finish()
    return wf.grids(buffer)


# -- network weights as integers ------------------------------------------------------------
def _weight_table_id(q: np.ndarray) -> int:
    rms = float(np.sqrt(np.mean(q.astype(np.float64) ** 2))) if q.size else 0.0
    return int(min(len(WEIGHT_SCALES) - 1, np.searchsorted(WEIGHT_SCALES, max(rms, WEIGHT_SCALES[0]))))


def code_integers(arrays: list[np.ndarray], weight_tables: entropy.TableSet) -> tuple[bytes, list[int]]:
    ids = [_weight_table_id(a) for a in arrays]
    values = np.concatenate([a.ravel() for a in arrays]).astype(np.int64)
    table_ids = np.concatenate([np.full(a.size, i, np.int64) for a, i in zip(arrays, ids)])
    return entropy.encode(values, table_ids, weight_tables), ids


def decode_integers(data: bytes, shapes: Sequence[tuple[int, ...]], ids: list[int],
                    weight_tables: entropy.TableSet) -> list[np.ndarray]:
    table_ids = np.concatenate([np.full(int(np.prod(s)), i, np.int64) for s, i in zip(shapes, ids)])
    flat = entropy.decode(data, table_ids, weight_tables).astype(np.int64)
    out, pos = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(flat[pos:pos + n].reshape(s))
        pos += n
    return out


def synthesis_weights(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Synthesis integers (units of 2^-SYN_FRAC) -> the float32 weights the decoder uses."""
    return [(a.astype(np.float64) / 2.0**SYN_FRAC).astype(np.float32) for a in arrays]


def synthesis_integers(params: list[np.ndarray]) -> list[np.ndarray]:
    return [np.round(np.asarray(p, dtype=np.float64) * 2.0**SYN_FRAC).astype(np.int64) for p in params]


class OverfitCodec:
    name = "overfit"
    qualities = (0, 1, 2, 3, 4, 5, 6)  # 0: lambda searched for a target rate
    encode_options = ("preset", "time_budget", "iterations", "target_bpp", "progress")
    model_id = MODEL_ID
    weights_hash = b"\0" * 8

    def for_encoding(self) -> "OverfitCodec":
        return self

    def for_stream(self, model_id: int, short_hash: bytes) -> "OverfitCodec":
        if model_id != MODEL_ID:
            raise CodecError(f"stream uses overfit model id {model_id}, unknown to this lcodec")
        return self

    def encode(self, image: np.ndarray, quality: int, reconstruct: bool = False, preset: str = "fast",
               time_budget: float | None = None, iterations: int | None = None, target_bpp: float | None = None,
               progress: Callable[[int, int, float, float], None] | None = None
               ) -> tuple[list[bytes], np.ndarray | None]:
        """Fit and code one image. ``time_budget`` is in seconds (for the whole encode).

        With ``target_bpp``, lambda is searched (bisection in log-lambda, at most
        ``TARGET_TRIALS`` fits) for the largest file that stays at or below the target.
        """
        if quality not in self.qualities[1:]:
            raise CodecError(f"quality must be one of 1..6, not {quality}")
        if image.shape[0] * image.shape[1] > MAX_PIXELS:
            raise UnsupportedImageError(f"the overfit codec takes images of at most {MAX_PIXELS} pixels "
                                        f"(4096x4096), not {image.shape[1]}x{image.shape[0]}")
        if preset not in PRESETS:
            raise CodecError(f"unknown preset {preset!r} (fast, medium, slow)")
        n = iterations if iterations is not None else PRESETS[preset]
        if n < 1:
            raise CodecError("iterations must be at least 1")
        if target_bpp is None:
            return self._encode_once(image, LAMBDAS[quality - 1], n, time_budget, reconstruct, preset,
                                     iterations is not None or time_budget is not None, progress)
        if not 0.01 <= target_bpp <= 8:
            raise CodecError(f"target bpp must lie in 0.01..8, not {target_bpp}")
        lo, hi = math.log(1e-4), math.log(0.2)
        best = None
        per_trial = None if time_budget is None else time_budget / TARGET_TRIALS
        # the header a target-rate stream gets (quality 0; the channel count does not change its size)
        header = Header(codec_id=CODEC_IDS[self.name], model_id=MODEL_ID, weights_hash=self.weights_hash,
                        width=image.shape[1], height=image.shape[0], channels=3, quality=0)
        for _ in range(TARGET_TRIALS):
            lam = math.exp(0.5 * (lo + hi))
            sections, recon = self._encode_once(image, lam, n, per_trial, reconstruct, preset, True, progress)
            bpp = 8.0 * (sum(map(len, sections)) + container_overhead(header, list(map(len, sections)))) / (
                image.shape[0] * image.shape[1])
            if bpp <= target_bpp:
                best = (sections, recon)
                lo = math.log(lam)
            else:
                hi = math.log(lam)
        if best is None:
            raise CodecError(f"could not reach {target_bpp} bpp (lowest lambda tried gave more)")
        return best

    def _encode_once(self, image: np.ndarray, lam: float, n: int, time_budget: float | None, reconstruct: bool,
                     preset: str, custom: bool, progress: Callable[[int, int, float, float], None] | None
                     ) -> tuple[list[bytes], np.ndarray | None]:
        from .model import fit  # torch: needed to fit, not to decode

        h, w = image.shape[:2]
        latents, arm, syn, report = fit(image, lam, n, time_budget, progress=progress)
        latent_tables, weight_tables = tables()
        farm = FixedPointArm(*FixedPointArm.quantise([p.detach().double().numpy() for p in arm.parameters()]))
        arm_bytes, arm_ids = code_integers(farm.arrays(), weight_tables)
        syn_ints = synthesis_integers([p.detach().double().numpy() for p in syn.parameters()])
        syn_bytes, syn_ids = code_integers(syn_ints, weight_tables)
        grids = [np.rint(y.detach()[0, 0].double().numpy()).astype(np.int64) for y in latents]
        if max(int(np.abs(g).max()) for g in grids) >= 1 << 30:
            raise CodecError("latent values out of range")
        preset_id = PRESET_IDS["custom"] if custom else PRESET_IDS[preset]
        params = _PARAMS.pack(preset_id, report.iterations) + bytes(arm_ids + syn_ids)
        sections = [params, arm_bytes, syn_bytes, code_grids(farm, grids, latent_tables)]
        self.last_report = report
        recon = synthesize(synthesis_weights(syn_ints), grids, h, w) if reconstruct else None
        return sections, recon

    def decode(self, sections: tuple[bytes, ...], width: int, height: int, quality: int) -> np.ndarray:
        if width * height > MAX_PIXELS:
            raise CorruptStreamError(f"overfit stream declares {width}x{height}, more than {MAX_PIXELS} pixels")
        if len(sections) != 4:
            raise CorruptStreamError(f"overfit stream has {len(sections)} sections, expected 4")
        params = sections[0]
        if len(params) != _PARAMS.size + len(ARM_SHAPES) + len(SYNTHESIS_SHAPES):
            raise CorruptStreamError("overfit parameter section has the wrong size")
        ids = list(params[_PARAMS.size:])
        latent_tables, weight_tables = tables()
        if max(ids) >= weight_tables.count:
            raise CorruptStreamError("overfit stream names a weight table that does not exist")
        try:
            arm_ints = decode_integers(sections[1], ARM_SHAPES, ids[:len(ARM_SHAPES)], weight_tables)
            try:
                farm = FixedPointArm(*arm_ints)
            except ValueError as exc:  # weights beyond the ARM's exactness bounds
                raise CorruptStreamError(f"overfit stream: {exc}") from None
            syn = synthesis_weights(decode_integers(sections[2], SYNTHESIS_SHAPES, ids[len(ARM_SHAPES):],
                                                    weight_tables))
            grids = decode_grids(farm, sections[3], grid_shapes(height, width), latent_tables)
        except entropy.RansError as exc:
            raise CorruptStreamError(f"overfit stream: {exc}") from None
        if max(int(np.abs(g).max()) for g in grids) >= 1 << 30:
            raise CorruptStreamError("overfit stream decodes to latents out of range")
        return synthesize(syn, grids, height, width)


def load_default() -> OverfitCodec:
    return OverfitCodec()
