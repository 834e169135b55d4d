"""Hidden Chow-Liu trees: structure, EM, exact conditionals and lossless round trips."""

from pathlib import Path

import numpy as np
import pytest
import torch

from codec.pc.coding import _PathState, decode_chunk, encode_chunk, naive_conditionals
from codec.pc.model import chow_liu_tree, mutual_information
from codec.pc.train import read_idx_images, train_hclt

MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


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


def test_path_scheme_matches_the_full_pass(model, digits):
    m = model[0]
    img = digits[1][0]
    naive = naive_conditionals(m, img, pixels=30)
    state = _PathState(m, 1)
    x = torch.from_numpy(img[None].astype(np.int64))
    for v in range(30):
        got = state.conditionals(v).numpy()[0]
        assert np.allclose(got, naive[v], atol=1e-4)
        state.observe(v, x[:, v])


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
