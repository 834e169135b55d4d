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
