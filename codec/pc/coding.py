"""Exact conditionals of an HCLT, turned into integer tables, coded with rANS.

Pixels are coded in raster order. The conditional of pixel ``v`` given the pixels before
it is ``p(x_v | x_<v) ∝ sum_h out_v(h) * prod_children up_c(h) * p(x_v | h)``: ``up_c`` are
the upward messages of ``v``'s children (with the evidence seen so far) and ``out_v`` is the
downward message into ``v`` from the rest of the tree. Every later pixel is summed out,
which in a circuit just means its leaf contributes 1 (Liu, Mandt & Van den Broeck, ICLR 2022,
Sec. 4).

Efficient scheme: observing a pixel changes only the messages on its path to the root, so
each step needs the downward messages along one path and the upward messages into that path:
O(depth * K^2) per pixel instead of a full pass over the circuit, for a whole batch of images
at once. Two savings on top: a downward message into ``c`` depends only on evidence outside
c's subtree, so the part of the path shared with the previous pixel's (whose subtrees hold
that pixel) is reused; and upward messages are recomputed only when a later step reads them,
so a run of pixels in one subtree updates its path to the root once, not once per pixel.
:func:`naive_conditionals` is the full-pass scheme, kept to measure the difference.

Determinism: the tables must be the same on every machine, and float64 BLAS products are not:
their last bits depend on the kernel the library picks for the CPU (SSE3, AVX2 with FMA,
AVX-512), and torch's softmax, which loaded the weights, differs between CPU capabilities
too. With them, the float64 conditionals of the conformance images differed in their last
bits between OpenBLAS kernels; their integer rows agreed only because no value fell next to
a quantisation step. A proof that the BLAS path always gives the exact rows is out of reach:
a worst-case bound on its rounding grows to about 1e6 units in the last place over a
784-pixel image, wide enough that (estimating from the rows' sizes) a few percent of images
would have a row with a value that close to a quantisation step, and no finite test covers
every image. So every message here is computed by element-wise float64 operations in an
order the program fixes (:mod:`codec.pc.ordered`: products and sums each rounded once, no
BLAS, no fused multiply-add), from weights loaded the same way (:func:`codec.pc.weights.dequantise_log`);
IEEE 754 then gives the same bits on every machine, and :func:`entropy.pmf_rows_to_freqs`
turns them into the same rows. The order of operations depends only on the tree and on the
pixel order, never on the data or the batch, so encoder and decoder repeat it and an image's
rows do not depend on the images coded beside it (``tests/codec/test_pc.py``). Fixed-point
integer messages were not an option: the messages span many orders of magnitude within a row,
and rounding them to a fixed grid would move the probabilities far more than float64 rounding
does, changing the rows of existing streams.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np
import torch

import entropy

from ..errors import CodecError, CorruptStreamError, UnsupportedImageError
from ..interfaces import Encoded, Progress, StreamInfo
from ..weightfiles import InstalledWeights, pick_weights
from . import ordered
from .model import HCLT, VALUES
from .weights import MODEL_IDS, installed_weights, load_cached

PRECISION = 16
#: images per rANS stream (the encoder keeps every table of a chunk until it is coded)
CHUNK = 256


class _PathState:
    """Messages of a batch of partially observed images, updated one pixel at a time.

    Messages live in the linear domain, each row normalised to sum 1 (so nothing under- or
    overflows: every edge and leaf probability is bounded away from zero by the training
    pseudo-count). Per node ``u``: ``leaf[u]`` is ``p(x_u | h_u)`` at the observed value (1
    while unobserved), ``prod[u]`` the normalised product of the children's messages, and
    ``up[u]`` the normalised message to the parent, ``up[u](h_p) ∝ sum_h edges[u, h_p, h]
    leaf[u](h) prod[u](h)``, brought up to date when read (``stale``). Everything is float64
    numpy in the fixed order of :mod:`codec.pc.ordered`, row by row, so a row's bits do not
    depend on the batch size or the machine.
    """

    def __init__(self, model: HCLT, batch: int):
        self.parent = model.tree.parent
        self.children = model.tree.children()
        self.paths = [np.asarray(model.tree.path_to_root(v)[::-1], dtype=np.int64) for v in range(model.tree.size)]
        self.prior = model.prior.detach().double().numpy()
        self.edges = model.edges.detach().double().numpy()  # [u, h_parent, h_u]
        self.edges_t = np.ascontiguousarray(self.edges.transpose(0, 2, 1))  # [u, h_u, h_parent]
        self.leaves = model.leaves.detach().double().numpy()  # [u, h_u, x]
        self.leaves_t = np.ascontiguousarray(self.leaves.transpose(0, 2, 1))  # [u, x, h_u]
        d, k = model.tree.size, model.hidden
        self.leaf = np.ones((d, batch, k))
        self.prod = np.full((d, batch, k), 1.0 / k)
        self.up = np.full((d, batch, k), 1.0 / k)
        # up[u] (and with it prod[parent]) predates an observation in u's subtree; a node that
        # is stale has stale ancestors, one that is not has no stale descendants
        self.stale = np.zeros(d, dtype=bool)
        # downward messages into the nodes of the last path that :meth:`conditionals` walked
        # (root first); the message into ``c`` only depends on evidence outside c's subtree,
        # so :meth:`observe` keeps those whose subtree holds the observed pixel
        self._down_path = self.paths[0][:1]
        self._down = [np.broadcast_to(self.prior, (batch, k))]

    @staticmethod
    def _mix(a: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Row-normalised ``a @ m`` for a (B, K) and m (K, N), in the fixed order of
        :mod:`codec.pc.ordered`."""
        out = ordered.dot(a, m)
        out /= ordered.row_sum(out)[:, None]
        return out

    def conditionals(self, v: int) -> np.ndarray:
        """p(x_v = value | evidence) for every value, shape (batch, 256)."""
        path = self.paths[v]  # root ... v
        down = self._down[:_common_prefix(path, self._down_path)]
        for i in range(len(down), len(path)):
            p, c = int(path[i - 1]), int(path[i])
            # belief at the parent without the child's own subtree, sent down the edge
            self._update_prod(p, skip=c)
            down.append(self._mix(down[-1] * self.leaf[p] * self.prod[p] / self.up[c], self.edges[c]))
        self._down_path, self._down = path, down
        self._update_prod(v)
        w = down[-1] * self.prod[v]
        return self._mix(w / ordered.row_sum(w)[:, None], self.leaves[v])

    def observe(self, v: int, values: np.ndarray) -> None:
        keep = _common_prefix(self.paths[v], self._down_path)
        self._down_path, self._down = self._down_path[:keep], self._down[:keep]
        self.leaf[v] = self.leaves_t[v][values]
        u = v
        while u >= 0 and not self.stale[u]:  # the messages up the tree are now out of date
            self.stale[u] = True
            u = int(self.parent[u])

    def _update_prod(self, p: int, skip: int = -1) -> None:
        """Bring ``prod[p]`` up to date with every child but ``skip``, children in index order."""
        for u in self.children[p]:
            if u != skip and self.stale[u]:
                self._update_up(u)

    def _update_up(self, u: int) -> None:
        """Recompute ``up[u]`` and fold it into its parent's ``prod``."""
        self._update_prod(u)
        p = int(self.parent[u])
        new = self._mix(self.leaf[u] * self.prod[u], self.edges_t[u])
        prod = self.prod[p] * new / self.up[u]
        self.prod[p] = prod / ordered.row_sum(prod)[:, None]
        self.up[u] = new
        self.stale[u] = False


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    same = a[:n] == b[:n]
    return n if same.all() else int(np.argmin(same))


def encode_chunk(model: HCLT, images: np.ndarray, bits: np.ndarray | None = None) -> bytes:
    """One rANS stream for a batch of images (B x D uint8), pixels in raster order.

    ``bits``, if given (float64, length B), receives each image's information content under
    the integer tables, ``-sum log2(freq / 2^16)``: its share of the stream's size.
    """
    b, d = images.shape
    x = images.astype(np.int64)
    freqs = np.empty((d, b, VALUES), dtype=np.uint16)  # max frequency 2**16 - 255 fits
    state = _PathState(model, b)
    for v in range(d):
        freqs[v] = entropy.pmf_rows_to_freqs(state.conditionals(v), PRECISION)
        state.observe(v, x[:, v])
    if bits is not None:
        chosen = np.take_along_axis(freqs, images.T[:, :, None].astype(np.int64), axis=2)[:, :, 0]
        bits[:] = (PRECISION - np.log2(chosen.astype(np.float64))).sum(axis=0)
    enc = entropy.RowEncoder(PRECISION)
    for v in range(d - 1, -1, -1):
        enc.push_reverse(images[:, v], freqs[v].astype(np.int32))
    return enc.finish()


def decode_chunk(model: HCLT, data: bytes, count: int) -> np.ndarray:
    """Inverse of :func:`encode_chunk`: (count x D) uint8."""
    d = model.tree.size
    out = np.empty((count, d), dtype=np.uint8)
    dec = entropy.RowDecoder(data, PRECISION)
    state = _PathState(model, count)
    for v in range(d):
        sym = dec.pop(entropy.pmf_rows_to_freqs(state.conditionals(v), PRECISION))
        out[:, v] = sym
        state.observe(v, sym.astype(np.int64))
    dec.finish()
    return out


def naive_conditionals(model: HCLT, image: np.ndarray, pixels: int | None = None) -> np.ndarray:
    """The same conditionals by a full upward pass per pixel and value: O(D * |circuit|) per
    pixel, for the first ``pixels`` pixels (default all). For measuring the speed-up of the
    path scheme, not for coding."""
    d = image.size
    x = torch.from_numpy(np.repeat(image.reshape(1, d).astype(np.int64), VALUES, axis=0))
    rows = []
    with torch.no_grad():
        for v in range(d if pixels is None else pixels):
            x[:, v] = torch.arange(VALUES)
            observed = torch.zeros(VALUES, d, dtype=torch.bool)
            observed[:, : v + 1] = True
            ll = model.log_likelihood(x, observed).double()
            p = torch.exp(ll - ll.max())
            rows.append((p / p.sum()).numpy())
            x[:, v] = int(image.reshape(-1)[v])
    return np.stack(rows)


#: images per stream at most (a set stream holds up to this many in CHUNK-image sections)
MAX_IMAGES = 1 << 16
_PARAMS = struct.Struct("<IH")


class PcCodec:
    """Lossless coding of fixed-size 8-bit grayscale images (one image or a set) with an HCLT:
    an :class:`~codec.interfaces.ImageCodec` and an :class:`~codec.interfaces.ImageSetCodec`.

    Sections (container v2): one per chunk of ``CHUNK`` images; chunk ``i`` holds images
    ``i*CHUNK .. (i+1)*CHUNK - 1``, each a raster-order rANS stream. The image count is the
    container's frame count. Version 1 streams carried a first section of their own
    (u32 image count, u16 chunk size); they still decode.
    """

    def __init__(self, name: str, model: HCLT, shape: tuple[int, int], weights: InstalledWeights):
        self.name = name
        self.model = model
        self.shape = shape
        self.weights = weights
        self.model_id = MODEL_IDS["hclt"]
        self.weights_hash = weights.short_hash

    def check_images(self, images: np.ndarray) -> np.ndarray:
        """(N, H*W) uint8 from an HxW, HxWx1, NxHxW or NxHxWx1 uint8 array of this codec's size."""
        h, w = self.shape
        a = np.asarray(images)
        if a.ndim >= 3 and a.shape[-1] == 1:
            a = a[..., 0]
        if a.dtype != np.uint8 or a.ndim not in (2, 3) or a.shape[-2:] != (h, w):
            got = "x".join(str(s) for s in np.asarray(images).shape)
            raise UnsupportedImageError(f"{self.name} codes {w}x{h} 8-bit grayscale images, not an array of "
                                        f"shape {got} ({np.asarray(images).dtype})")
        a = a.reshape(-1, h * w)
        if not 1 <= a.shape[0] <= MAX_IMAGES:
            raise UnsupportedImageError(f"{self.name} codes 1..{MAX_IMAGES} images per stream, not {a.shape[0]}")
        return np.ascontiguousarray(a)

    def encode(self, image: np.ndarray, quality: int | None, reconstruct: bool = False,
               progress: Progress | None = None) -> Encoded:
        """One HxWx1 image."""
        flat = self.check_images(image)
        if flat.shape[0] != 1:
            raise UnsupportedImageError(f"{self.name}: expected one image")
        return Encoded(tuple(self._encode_chunks(flat)), None, image if reconstruct else None)

    def encode_set(self, images: np.ndarray, reconstruct: bool = False, progress: Progress | None = None,
                   bits: np.ndarray | None = None) -> Encoded:
        flat = self.check_images(images)
        n = flat.shape[0]
        done = [0]

        def step(k: int) -> None:
            done[0] += k
            if progress is not None:
                progress(done[0], n, f"{done[0]} of {n} images")

        # a set of images is untimed: frames without a frame rate
        return Encoded(tuple(self._encode_chunks(flat, step, bits)), None, None, frames=n)

    def _encode_chunks(self, flat: np.ndarray, progress: Callable[[int], None] | None = None,
                       bits: np.ndarray | None = None) -> list[bytes]:
        """The chunk sections of a stream from checked (N, H*W) images; ``bits`` (length N)
        receives each image's share in bits."""
        sections = []
        for i in range(0, flat.shape[0], CHUNK):
            sections.append(encode_chunk(self.model, flat[i:i + CHUNK], None if bits is None else bits[i:i + CHUNK]))
            if progress:
                progress(min(CHUNK, flat.shape[0] - i))
        return sections

    def decode(self, sections: tuple[bytes, ...], info: StreamInfo) -> np.ndarray:
        """HxWx1 for one image, NxHxWx1 for a set."""
        if info.channels != 1:
            raise CorruptStreamError(f"{self.name} stream declares {info.channels} channels")
        if info.version == 1:
            count, chunks = self._v1_layout(sections, info)
        else:
            count, chunks = info.frames, sections
        images = self.decode_images(chunks, info.width, info.height, count)
        return images[0] if info.frames == 1 and count == 1 else images

    def _v1_layout(self, sections: tuple[bytes, ...], info: StreamInfo) -> tuple[int, tuple[bytes, ...]]:
        """Image count and chunk sections of a version 1 stream (first section: count, chunk)."""
        if not sections or len(sections[0]) != _PARAMS.size:
            raise CorruptStreamError(f"{self.name} stream has no valid parameter section")
        count, chunk = _PARAMS.unpack(sections[0])
        if not 1 <= count <= MAX_IMAGES or chunk != CHUNK:
            raise CorruptStreamError(f"{self.name} stream declares {count} images in chunks of {chunk}")
        # the pixels-per-byte bound of the registry, applied to the count this layout hides
        # from the container (real sets code at about 6 pixels per byte)
        size = sum(map(len, sections))
        if count * info.width * info.height > max(1 << 18, 64 * size):
            raise CorruptStreamError(f"{self.name} stream declares {count} images in only {size} bytes")
        return count, sections[1:]

    def decode_images(self, sections: tuple[bytes, ...], width: int, height: int, count: int,
                      progress: Callable[[int], None] | None = None) -> np.ndarray:
        """(N, H, W, 1) uint8 from the chunk sections of ``count`` images."""
        if (height, width) != self.shape:
            raise CorruptStreamError(f"stream declares {width}x{height}; {self.name} codes {self.shape[1]}x{self.shape[0]}")
        if not 1 <= count <= MAX_IMAGES:
            raise CorruptStreamError(f"{self.name} stream declares {count} images")
        chunk = CHUNK
        if len(sections) != -(-count // chunk):
            raise CorruptStreamError(f"{self.name} stream has {len(sections)} sections for {count} images")
        out = np.empty((count, height * width), dtype=np.uint8)
        for j, data in enumerate(sections):
            n = min(chunk, count - j * chunk)
            try:
                out[j * chunk:j * chunk + n] = decode_chunk(self.model, data, n)
            except entropy.RansError as exc:
                raise CorruptStreamError(f"{self.name} chunk {j}: {exc}") from None
            if progress:
                progress(n)
        return out.reshape(count, height, width, 1)


class PcFactory:
    """What the registry hands out for ``pc-mnist`` and ``pc-fashion-mnist``."""

    def __init__(self, name: str):
        self.name = name

    def _load(self, short_hash: bytes | None) -> PcCodec:
        w = pick_weights(installed_weights(self.name), short_hash, self.name)
        model, shape = load_cached(str(w.path), w.sha256)
        return PcCodec(self.name, model, shape, w)

    def for_encoding(self) -> PcCodec:
        return self._load(None)

    def for_stream(self, info: StreamInfo) -> PcCodec:
        if info.model_id not in MODEL_IDS.values():
            raise CodecError(f"stream uses {self.name} model id {info.model_id}, unknown to this lcodec")
        return self._load(info.weights_hash)

    def cache_key(self) -> str:
        return pick_weights(installed_weights(self.name), None, self.name).sha256[:16]


def load_mnist() -> PcFactory:
    return PcFactory("pc-mnist")


def load_fashion_mnist() -> PcFactory:
    return PcFactory("pc-fashion-mnist")
