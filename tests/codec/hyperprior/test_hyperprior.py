import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import codec
from codec.metrics import psnr

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def impl():
    from codec.hyperprior.coding import load_codec

    return load_codec()


@pytest.mark.parametrize("quality", [1, 3, 6])
def test_kodak_crops_round_trip_exactly(kodak_crops, impl, quality):
    for img in kodak_crops:
        sections, recon = impl.encode_rgb(img, quality, reconstruct=True)
        data = codec.compress(img, quality=quality)
        out = codec.decompress(data)
        assert out.shape == img.shape and out.dtype == np.uint8
        # the decoder reproduces the encoder's reconstruction bit for bit
        assert np.array_equal(out, recon)
        # and it is a real reconstruction of the photograph, not noise
        assert psnr(img, out) > 20.0
        assert 8 * len(data) / (img.shape[0] * img.shape[1]) < 4.0


def test_higher_quality_spends_more_bits_for_less_distortion(kodak_crops):
    img = kodak_crops[0]
    sizes, errs = [], []
    for q in (1, 3, 6):
        data = codec.compress(img, quality=q)
        sizes.append(len(data))
        errs.append(psnr(img, codec.decompress(data)))
    assert sizes[0] < sizes[1] < sizes[2]
    assert errs[0] < errs[2]


def test_encoder_output_is_byte_identical_across_runs(kodak_crops):
    img = kodak_crops[1]
    assert codec.compress(img, quality=4) == codec.compress(img, quality=4)


def test_verify_flag(kodak_crops):
    assert codec.compress(kodak_crops[2], quality=2, verify=True) == codec.compress(kodak_crops[2], quality=2)


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 37, 3), (65, 1, 3), (63, 130, 3), (17, 23)])
def test_any_size_and_grayscale(shape):
    rng = np.random.default_rng(sum(shape))
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    out = codec.decompress(codec.compress(img, quality=3))
    expect = shape if len(shape) == 3 else shape + (1,)
    assert out.shape == expect


def test_grayscale_photo_stays_close(kodak_crops):
    gray = kodak_crops[0].mean(axis=2).round().astype(np.uint8)
    out = codec.decompress(codec.compress(gray, quality=5))
    assert out.shape == gray.shape + (1,)
    assert psnr(gray[:, :, None], out) > 22.0


def test_decoded_pixels_do_not_depend_on_torch_threads(tmp_path, kodak_crops):
    data = codec.compress(kodak_crops[0], quality=4)
    (tmp_path / "s.lcd").write_bytes(data)
    script = (
        "import sys, hashlib, torch; torch.set_num_threads(int(sys.argv[1])); import codec;"
        "print(hashlib.sha256(codec.decompress(open(sys.argv[2], 'rb').read()).tobytes()).hexdigest())"
    )
    digests = {
        n: subprocess.run([sys.executable, "-c", script, str(n), str(tmp_path / "s.lcd")], capture_output=True,
                          text=True, check=True).stdout.strip()
        for n in (1, 2)
    }
    local = hashlib.sha256(codec.decompress(data).tobytes()).hexdigest()
    assert digests[1] == digests[2] == local


@pytest.fixture(scope="module")
def training_model(impl):
    """The shipped weights in the compressai-built (training) model."""
    from codec.hyperprior.weights import load_model_file

    model, _ = load_model_file(impl.weights.path, impl.weights.sha256)
    return model


def test_stored_tables_are_rebuilt_exactly_from_the_weights(impl, training_model):
    from codec.hyperprior.weights import build_tables

    rebuilt = build_tables(training_model)
    assert rebuilt.z.digest() == impl.tables.z.digest()
    assert rebuilt.y.digest() == impl.tables.y.digest()
    assert np.array_equal(rebuilt.scales, impl.tables.scales)
    assert np.array_equal(rebuilt.hyper.gain, impl.tables.hyper.gain)
    assert np.array_equal(rebuilt.hyper.inv_hgain_fixed, impl.tables.hyper.inv_hgain_fixed)
    assert all(np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
               for a, b in zip(rebuilt.hyper.layers, impl.tables.hyper.layers))


def test_widened_synthesis_computes_what_the_narrow_one_did(training_model):
    import torch

    from codec.hyperprior.train import widen_synthesis

    wide = widen_synthesis(training_model, 96).eval()
    assert wide.config.N_s == 96 and wide.g_s[0].out_channels == 96
    assert training_model.config.N_s is None  # the source model is untouched
    torch.manual_seed(1)
    y = torch.randn(1, training_model.config.M, 5, 7)
    with torch.no_grad():
        assert torch.allclose(wide.g_s(y), training_model.g_s(y), atol=1e-5)
        # everything but the synthesis is the same parameters
        x = torch.rand(1, 3, 64, 64)
        assert torch.equal(wide.g_a(x), training_model.g_a(x))
    # and the new channels are live: a training step reaches their weights
    wide.train()
    wide.g_s(y).square().mean().backward()
    assert wide.g_s[6].weight.grad[training_model.config.N:].abs().sum() > 0


def test_synthesis_width_round_trips_through_the_config():
    from codec.errors import CodecError
    from codec.hyperprior.model import HyperpriorConfig
    from codec.hyperprior.train import widen_synthesis

    cfg = HyperpriorConfig(N=8, M=12, N_s=16)
    assert HyperpriorConfig.from_json(cfg.to_json()) == cfg
    # a config without the field reads as it always did, and writes the same JSON
    assert "N_s" not in HyperpriorConfig(N=8, M=12).to_json()
    from codec.hyperprior.model import MeanScaleHyperprior

    with pytest.raises(CodecError):
        widen_synthesis(MeanScaleHyperprior(cfg), 8)


def test_coding_model_matches_the_compressai_model_bit_for_bit(impl, training_model):
    import torch

    assert impl.model.coding_only and not training_model.coding_only
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(1, 3, 96, 128, generator=gen)
    with torch.no_grad():
        for part in ("g_a", "h_a", "g_s", "h_s"):
            a, b = getattr(impl.model, part), getattr(training_model, part)
            inp = x if part == "g_a" else torch.randn(1, a[0].in_channels, 6, 8, generator=gen) * 4
            assert torch.equal(a(inp), b(inp)), part


def test_coding_does_not_import_compressai(tmp_path, kodak_crops):
    """compressai's package import costs seconds; encoding and decoding never need it."""
    np.save(tmp_path / "x.npy", kodak_crops[0][:40, :56])
    code = ("import sys, numpy, codec; d = codec.compress(numpy.load(sys.argv[1]), quality=2); "
            "codec.decompress(d); print(sorted(m for m in sys.modules if m.startswith('compressai')))")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.npy")], capture_output=True, cwd=ROOT, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_shipped_manifests_are_complete():
    from codec.hyperprior.weights import WEIGHTS_DIR
    from codec.weightfiles import sha256_file

    manifests = sorted(WEIGHTS_DIR.glob("*.json"))
    assert manifests
    for m in manifests:
        meta = json.loads(m.read_text())
        path = m.with_name(meta["file"])
        assert sha256_file(path) == meta["sha256"]
        assert path.stat().st_size <= 10_000_000
        assert meta["steps"] > 0 and meta["wall_seconds"] > 0
        assert len(meta["qualities"]) >= 4
        for q in meta["qualities"].values():
            assert {"lambda", "kodak_bpp", "kodak_psnr"} <= set(q)


def test_tampered_weights_are_refused(tmp_path, impl):
    from codec.hyperprior.weights import load_model_file

    blob = bytearray(impl.weights.path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(bytes(blob))
    with pytest.raises(codec.WeightsError, match="SHA-256"):
        load_model_file(bad, expected_sha256=impl.weights.sha256)
    bad.write_bytes(bytes(blob[:1000]))
    with pytest.raises(codec.WeightsError):
        load_model_file(bad)


def test_stream_naming_missing_weights_is_refused(kodak_crops):
    from codec.fuzzing import reseal, set_field

    data = codec.compress(kodak_crops[0][:32, :32], quality=1)
    data = reseal(set_field(data, "weights_hash", b"\xaa" * 4))
    with pytest.raises(codec.WeightsError, match="not installed"):
        codec.decompress(data)


# -- integer hyper-synthesis ---------------------------------------------------------------
def test_integer_convolutions_equal_exact_float64_reference(impl):
    import torch

    from codec.hyperprior import integer

    rng = np.random.default_rng(7)
    hyper = impl.tables.hyper
    for layer, cin, torch_op in ((hyper.layers[0], 64, "transposed"), (hyper.layers[2], 192, "conv")):
        x = rng.integers(-3000, 3000, (cin, 5, 7)).astype(np.float64)
        k = layer.kernel
        if torch_op == "transposed":
            w = torch.from_numpy(np.ascontiguousarray(layer.weight.reshape(cin, k, k, -1).transpose(0, 3, 1, 2)))
            ref = torch.nn.functional.conv_transpose2d(torch.from_numpy(x)[None], w, stride=2, padding=2,
                                                       output_padding=1)[0].numpy()
            got = integer._transposed_conv(x.transpose(1, 2, 0), layer)
        else:
            w = torch.from_numpy(np.ascontiguousarray(layer.weight.reshape(k, k, cin, -1).transpose(3, 2, 0, 1)))
            ref = torch.nn.functional.conv2d(torch.from_numpy(x)[None], w, padding=k // 2)[0].numpy()
            got = integer._conv(x.transpose(1, 2, 0), layer)
        assert np.array_equal(got.transpose(2, 0, 1), ref)


def test_integer_entropy_parameters_ignore_blas_threads(impl, kodak_crops):
    from threadpoolctl import threadpool_limits

    import torch

    model = impl.model
    with torch.no_grad():
        _, _, hgain, _ = model.gains(torch.tensor([3]))
        x = torch.from_numpy(kodak_crops[1]).permute(2, 0, 1)[None].float() / 255
        z = torch.round(model.h_a(model.g_a(x)) * hgain).numpy().astype(np.int32)
    outs = []
    for n in (1, 2):
        with threadpool_limits(limits=n, user_api="blas"):
            outs.append(impl.tables.hyper.fixed_outputs(z, 4))
    assert np.array_equal(outs[0], outs[1])
    assert np.all(outs[0] == np.round(outs[0]))


def test_integer_entropy_parameters_cost_almost_no_rate(impl, kodak_crops):
    """Against the float hyper-synthesis the model was trained with: the same Gaussian bits
    within 0.5%."""
    import torch
    from scipy.special import erfc

    model, scales = impl.model, impl.tables.scales.astype(np.float64)

    def bits(y: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> float:
        s = scales[np.minimum(np.searchsorted(impl.tables.scales, sigma, side="left"), len(scales) - 1)]
        v = np.abs(np.round(y - mu))
        p = 0.5 * erfc((v - 0.5) / (s * np.sqrt(2))) - 0.5 * erfc((v + 0.5) / (s * np.sqrt(2)))
        return float(-np.log2(np.maximum(p, 1e-9)).sum())

    for q in (1, 6):
        with torch.no_grad():
            gain, _, hgain, inv_hgain = model.gains(torch.tensor([q - 1]))
            x = torch.from_numpy(kodak_crops[0]).permute(2, 0, 1)[None].float() / 255
            y0 = model.g_a(x)
            z = torch.round(model.h_a(y0) * hgain)
            mu_f, sigma_f = model.entropy_parameters(z, inv_hgain, gain)
            y = (y0 * gain).numpy()
        mu_i, sigma_i = impl.tables.hyper(z.numpy().astype(np.int32), q)
        float_bits = bits(y, mu_f.numpy(), sigma_f.numpy())
        assert abs(bits(y, mu_i, sigma_i) / float_bits - 1) < 0.005


def test_hyper_synthesis_refuses_weights_beyond_exact_integers(impl):
    from codec.hyperprior.integer import IntegerHyperSynthesis

    h = impl.tables.hyper
    layers = [(np.full((64, 128, 5, 5), 1000.0, dtype=np.float16), np.zeros(128, np.float16)),
              (np.zeros((128, 192, 5, 5), np.float16), np.zeros(192, np.float16)),
              (np.zeros((256, 192, 3, 3), np.float16), np.zeros(256, np.float16))]
    with pytest.raises(ValueError, match="exact"):
        IntegerHyperSynthesis(layers, h.inv_hgain_fixed, h.gain, 0.11)


def test_streams_of_the_retired_float_model_are_refused_by_name(kodak_crops):
    from codec.fuzzing import reseal, set_field

    data = codec.compress(kodak_crops[0][:16, :16], quality=1)
    assert codec.info(data)["model_id"] == 2
    with pytest.raises(codec.CodecError, match="model id 1 .*no longer"):
        codec.decompress(reseal(set_field(data, "model_id", 1)))


def test_compiled_training_without_a_compiler_is_a_clear_error(monkeypatch):
    import shutil

    from codec.errors import CodecError
    from codec.hyperprior.train import _compiled, rd_loss

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(CodecError, match="C\\+\\+ compiler"):
        _compiled(rd_loss)


def test_synthesis_width_needs_starting_weights(tmp_path):
    from codec.errors import CodecError
    from codec.hyperprior.train import TrainOptions, train

    opts = TrainOptions(data=tmp_path, run_dir=tmp_path / "run", synthesis_width=96)
    with pytest.raises(CodecError, match="starting weights"):
        train(opts, log=lambda s: None)


def test_extended_qualities_keep_the_old_ones_exactly() -> None:
    from codec.hyperprior.model import HyperpriorConfig, MeanScaleHyperprior
    import torch

    from codec.errors import CodecError
    from codec.hyperprior.train import extend_qualities

    torch.manual_seed(0)
    small = MeanScaleHyperprior(HyperpriorConfig(N=8, M=8)).eval()
    lambdas = small.config.lambdas + (0.0932, 0.18)
    big = extend_qualities(small, lambdas).eval()
    assert big.config.qualities == 8
    for q in range(small.config.qualities):
        for a, b in zip(small.gains(torch.tensor([q])), big.gains(torch.tensor([q]))):
            assert torch.equal(a, b)
    # a new quality quantises more finely than the old top one
    assert (big.gains(torch.tensor([7]))[0] > big.gains(torch.tensor([5]))[0]).all()
    with pytest.raises(CodecError):
        extend_qualities(small, (0.1,) + lambdas[1:])
