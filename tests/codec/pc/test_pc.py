"""Hidden Chow-Liu trees: structure, EM, exact conditionals and lossless round trips."""

from pathlib import Path

import numpy as np
import pytest
import torch

from codec.pc.coding import _PathState, decode_chunk, encode_chunk, naive_conditionals
from codec.pc.model import chow_liu_tree, mutual_information
from codec.pc.train import read_idx_images, train_hclt

MNIST = Path(__file__).resolve().parents[4] / "shared" / "data" / "mnist"


@pytest.fixture(scope="module")
def digits():
    if MNIST.is_dir():
        train = read_idx_images(MNIST / "train-images-idx3-ubyte.gz")[:400]
        test = read_idx_images(MNIST / "t10k-images-idx3-ubyte.gz")[:12]
    else:  # synthetic strokes when the data set is not beside the checkout
        rng = np.random.default_rng(0)
        train = (rng.random((412, 28, 28)) < 0.2).astype(np.uint8) * 255
        train, test = train[:400], train[400:]
    return train.reshape(len(train), -1), test.reshape(len(test), -1)


@pytest.fixture(scope="module")
def model(digits):
    torch.manual_seed(0)
    m, info = train_hclt(digits[0], hidden=3, minibatch_epochs=1, full_epochs=2, log=lambda s: None)
    return m, info


def test_chow_liu_tree_is_a_spanning_tree_of_maximum_weight():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (500, 1))
    x = np.concatenate([base, base ^ 1, rng.integers(0, 256, (500, 1)), base // 2], axis=1).astype(np.uint8)
    mi = mutual_information(x)
    tree = chow_liu_tree(mi)
    assert (tree.parent < 0).sum() == 1 and tree.bfs_order().size == 4
    edges = {frozenset((v, int(p))) for v, p in enumerate(tree.parent) if p >= 0}
    # the three columns derived from `base` are linked to each other, the noise column hangs off once
    assert sum(1 for e in edges if 2 in e) == 1
    assert len({frozenset((0, 1)), frozenset((0, 3)), frozenset((1, 3))} & edges) == 2


def test_em_improves_the_likelihood(model):
    hist = model[1]["history"]
    assert hist[-1]["train_bpd"] < hist[0]["train_bpd"]
    assert hist[-1]["train_bpd"] < 4.0


def test_training_resumes_from_a_checkpoint(model, digits, tmp_path):
    from codec.pc.train import load_checkpoint, save_checkpoint

    m, info = model
    save_checkpoint(m, tmp_path / "c.safetensors", info)
    (tmp_path / "c.json").write_text("{}")
    again, _ = load_checkpoint(tmp_path / "c.safetensors")
    assert torch.equal(again.leaves, m.leaves) and np.array_equal(again.tree.parent, m.tree.parent)
    seen = []
    cont, more = train_hclt(digits[0], hidden=3, minibatch_epochs=0, full_epochs=1, log=lambda s: None,
                            init=again, on_epoch=lambda mm, i: seen.append(len(i["history"])))
    assert seen == [1] and more["history"][0]["train_bpd"] <= info["history"][-1]["train_bpd"] + 1e-6


def test_path_scheme_matches_the_full_pass(model, digits):
    m = model[0]
    img = digits[1][0]
    naive = naive_conditionals(m, img, pixels=30)
    state = _PathState(m, 1)
    x = img[None].astype(np.int64)
    for v in range(30):
        got = state.conditionals(v)[0]
        assert np.allclose(got, naive[v], atol=1e-6)
        state.observe(v, x[:, v])


def test_conditionals_do_not_depend_on_the_batch(model, digits):
    m = model[0]
    batch = digits[1][:5].astype(np.int64)
    together, alone = _PathState(m, 5), _PathState(m, 1)
    for v in range(m.tree.size):
        a, b = together.conditionals(v), alone.conditionals(v)
        assert np.allclose(a[2], b[0], rtol=1e-12, atol=1e-15)
        together.observe(v, batch[:, v])
        alone.observe(v, batch[2:3, v])



def _eager_conditionals(m, images):
    """The message scheme without reuse or deferred updates: every step walks the whole path
    down and, after observing, the whole path up (float64 BLAS)."""
    tree, k = m.tree, m.hidden
    prior, edges, leaves = (t.detach().double().numpy() for t in (m.prior, m.edges, m.leaves))
    b, d = images.shape
    leaf, prod, up = np.ones((d, b, k)), np.full((d, b, k), 1.0 / k), np.full((d, b, k), 1.0 / k)

    def mix(a, w):
        out = a @ w
        return out / out.sum(axis=1, keepdims=True)

    rows = []
    for v in range(d):
        path = tree.path_to_root(v)[::-1]
        out = np.broadcast_to(prior, (b, k))
        for p, c in zip(path[:-1], path[1:]):
            out = mix(out * leaf[p] * prod[p] / up[c], edges[c])
        w = out * prod[v]
        rows.append(mix(w / w.sum(axis=1, keepdims=True), leaves[v]))
        leaf[v] = leaves[v].T[images[:, v]]
        u = v
        while tree.parent[u] >= 0:
            p = int(tree.parent[u])
            new = mix(leaf[u] * prod[u], edges[u].T)
            q = prod[p] * new / up[u]
            prod[p], up[u] = q / q.sum(axis=1, keepdims=True), new
            u = p
    return np.stack(rows)


def test_reused_and_deferred_messages_equal_the_eager_scheme(model, digits):
    m = model[0]
    x = digits[1][:4].astype(np.int64)
    state = _PathState(m, 4)
    got = []
    for v in range(m.tree.size):
        got.append(state.conditionals(v))
        state.observe(v, x[:, v])
    assert np.allclose(np.stack(got), _eager_conditionals(m, x), rtol=1e-10, atol=0)


def test_conditionals_are_the_same_bits_in_any_batch(model, digits):
    m = model[0]
    batch = digits[1][:5].astype(np.int64)
    together, alone = _PathState(m, 5), _PathState(m, 1)
    for v in range(m.tree.size):
        assert np.array_equal(together.conditionals(v)[2], alone.conditionals(v)[0])
        together.observe(v, batch[:, v])
        alone.observe(v, batch[2:3, v])

def test_lossless_round_trip_and_rate(model, digits):
    m = model[0]
    test = digits[1]
    blob = encode_chunk(m, test)
    assert np.array_equal(decode_chunk(m, blob, len(test)), test)
    bpd = 8 * len(blob) / test.size
    expected = m.bits_per_dim(torch.from_numpy(test.astype(np.int64)))
    assert abs(bpd - expected) < 0.02 + 64 / test.size  # the stream costs what the model says
    # a single image decodes the same way on its own
    one = encode_chunk(m, test[:1])
    assert np.array_equal(decode_chunk(m, one, 1), test[:1])


# -- the registered codecs, with the shipped weights ---------------------------------------
@pytest.mark.parametrize("name,folder", [("pc-mnist", "mnist"), ("pc-fashion-mnist", "fashion-mnist")])
def test_shipped_codec_round_trips_test_images(name, folder, shared_data):
    import codec

    images = read_idx_images(shared_data(f"{folder}/t10k-images-idx3-ubyte.gz"))[:40]
    one = codec.compress(images[0], codec=name)
    assert np.array_equal(codec.decompress(one), images[0][:, :, None])
    enc = codec.compress_image_set(images, codec=name, verify=True)
    back = codec.decompress(enc.data)
    assert back.shape == (40, 28, 28, 1) and np.array_equal(back[..., 0], images)
    assert codec.info(enc.data)["images"] == 40
    assert enc.bits_per_pixel < 4.5  # a trained model, far below 8 bits per pixel


def test_shipped_codec_refuses_other_shapes_and_qualities():
    import codec

    for bad in (np.zeros((28, 29), np.uint8), np.zeros((28, 28, 3), np.uint8), np.zeros((2, 27, 28), np.uint8)):
        with pytest.raises(codec.UnsupportedImageError, match="28x28 8-bit grayscale"):
            codec.compress(bad, codec="pc-mnist")
    with pytest.raises(codec.UnsupportedImageError, match="uint8"):
        codec.compress(np.zeros((28, 28), np.float32), codec="pc-mnist")
    with pytest.raises(codec.CodecError, match="no quality levels"):
        codec.compress(np.zeros((28, 28), np.uint8), codec="pc-mnist", quality=3)


def test_shipped_codec_refuses_corrupt_streams(shared_data):
    import codec
    from codec.fuzzing import reseal, set_field

    data = codec.compress_image_set(read_idx_images(shared_data("mnist/t10k-images-idx3-ubyte.gz"))[:3],
                                    codec="pc-mnist").data
    for bad in (data[:-5], reseal(set_field(data, "width", 27)), reseal(set_field(data, "frames", 5)),
                reseal(data[:40] + bytes([data[40] ^ 0xFF]) + data[41:])):
        with pytest.raises(codec.CodecError):
            codec.decompress(bad)


# -- the same bits on every machine ----------------------------------------------------------
def test_ordered_operations_follow_their_stated_order():
    """codec.pc.ordered against Python floats (each operation one IEEE rounding) in the order
    its docstrings state: equal bit for bit, and a row's bits do not depend on its batch."""
    from codec.pc import ordered

    rng = np.random.default_rng(8)

    def row_sum_ref(row):
        vals = list(row)
        while len(vals) > 1:
            h = len(vals) // 2
            vals = [vals[j] + vals[j + h] for j in range(h)] + vals[2 * h:]
        return vals[0]

    for k, n in ((3, 7), (16, 16), (32, 32), (16, 256), (32, 256), (5, 1), (1, 9)):
        a, m = rng.random((4, k)) ** 8, rng.random((k, n)) ** 8  # spread exponents: rounding shows
        got = ordered.dot(a, m)
        for b in range(4):
            for j in range(n):
                s = float(a[b, 0]) * float(m[0, j])
                for i in range(1, k):
                    s = s + float(a[b, i]) * float(m[i, j])
                assert got[b, j] == s
            assert np.array_equal(ordered.dot(a[b:b + 1], m)[0], got[b])
    for n in (1, 2, 3, 7, 32, 33, 256):
        x = rng.random((3, n)) ** 8
        assert ordered.row_sum(x).tolist() == [row_sum_ref(r.tolist()) for r in x]


def test_weight_exponentials_are_correctly_rounded():
    """Every value the weights loader's exp table can take (all 256), against a 200-bit
    evaluation rounded once to float64."""
    mpmath = pytest.importorskip("mpmath")
    from codec.pc.weights import LOG_STEP, exp_table

    with mpmath.workprec(200):
        ref = [float(mpmath.exp(-j * mpmath.mpf(LOG_STEP))) for j in range(256)]
    assert exp_table().tolist() == ref


#: SHA-256 of the shipped models' float64 parameters as loaded, and of the float64
#: conditionals and integer rows of the conformance single images (and their transposes),
#: all pixels, as every machine must compute them
PC_DIGESTS = {
    "pc-mnist": ("099f13c07de514f2528533a4716741153c329acff079a1510c37258236add5e4",
                 "7fa709da5c497ca5a03a355238c80fd534ee4d9bde29a24a4d1c0d9414ab39cc",
                 "ff1c26544e2c3d1f39989ea2d3aa003c99fa1ebe687b8afe7ff242a4f25bc852"),
    "pc-fashion-mnist": ("be24c44edd2bd1da66f9abf2c5b55019ce22129631337928d9886550fa4cd19f",
                         "2d3205d5d35c5f404a2f7b25a1ddbc99442f16ef9ebb3e48e5909a1762531324",
                         "69ba1be9444ae7eee4966331856da05b8df1b549299a4609603804f70c0a95f0"),
}

_DIGEST_SCRIPT = """
import hashlib, json, sys
from pathlib import Path
import numpy as np
import codec, entropy
from codec.pc.coding import PRECISION, _PathState
from codec.pc.weights import installed_weights, load_cached

out = {}
for name in ("pc-mnist", "pc-fashion-mnist"):
    w = installed_weights(name)[0]
    model, _ = load_cached(str(w.path), w.sha256)
    params = hashlib.sha256()
    for t in (model.prior, model.edges, model.leaves):
        params.update(t.detach().numpy().tobytes())
    img = codec.decompress((Path("bitstreams/conformance/v1") / f"{name}-one.lcd").read_bytes())[:, :, 0]
    x = np.stack([img.ravel(), img.T.ravel()]).astype(np.int64)
    cond, rows = hashlib.sha256(), hashlib.sha256()
    state = _PathState(model, 2)
    for v in range(x.shape[1]):
        p = state.conditionals(v)
        cond.update(p.tobytes())
        rows.update(entropy.pmf_rows_to_freqs(p, PRECISION).tobytes())
        state.observe(v, x[:, v])
    out[name] = [params.hexdigest(), cond.hexdigest(), rows.hexdigest()]
print(json.dumps(out))
"""


def _pc_digests(env: dict[str, str]) -> dict[str, list[str]]:
    import json
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT], env={**os.environ, **env}, capture_output=True,
                       text=True, cwd=Path(__file__).resolve().parents[3])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def _other_cpu_paths() -> list[dict[str, str]]:
    """Settings that make numpy, OpenBLAS and torch run the code paths of older CPUs here."""
    from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    from threadpoolctl import threadpool_info

    have = [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]
    openblas = any(i["internal_api"] == "openblas" for i in threadpool_info() if i["user_api"] == "blas")
    x86 = "SSE3" in __cpu_features__
    paths = []
    if any(f.startswith("AVX512") for f in have):  # an AVX2 machine
        paths.append({"NPY_DISABLE_CPU_FEATURES": " ".join(f for f in have if f.startswith("AVX512")),
                      "ATEN_CPU_CAPABILITY": "avx2", **({"OPENBLAS_CORETYPE": "Haswell"} if openblas else {})})
    if have:  # a machine with no SIMD beyond the build's baseline
        paths.append({"NPY_DISABLE_CPU_FEATURES": " ".join(have), "ATEN_CPU_CAPABILITY": "default",
                      **({"OPENBLAS_CORETYPE": "Prescott"} if openblas and x86 else {})})
    return paths


def test_conditionals_are_the_same_bits_on_every_cpu_path():
    """The loaded weights, the float64 conditionals and the integer rows are pinned bit for
    bit (so another machine that computes anything else fails here), and on this machine
    they stay the same when numpy, OpenBLAS and torch are made to run the code of older CPUs
    (no AVX-512; no SIMD beyond the baseline, OpenBLAS without FMA)."""
    here = _pc_digests({})
    assert here == {k: list(v) for k, v in PC_DIGESTS.items()}
    for env in _other_cpu_paths():
        assert _pc_digests(env) == here, env
