"""The overfitted codec: exact decode, integer ARM, determinism, bad streams."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import codec
from codec.overfit.coding import Wavefronts, code_grids, decode_grids, tables
from codec.overfit.model import Arm, Synthesis, Upsampler
from codec.overfit.runtime import (ARM_SHAPES, CONTEXT, SYNTHESIS_SHAPES, WAVE, FixedPointArm, grid_shapes,
                                   macs_per_pixel, synthesize, upsample)

ROOT = Path(__file__).resolve().parents[3]
LATENT_DIGEST = "51475d65f6bf9cb7"
WEIGHT_DIGEST = "e2715757e3fea44e"


def test_wavefronts_only_depend_on_earlier_groups():
    shapes = grid_shapes(9, 14)
    wf = Wavefronts.for_grids(shapes)
    step = np.full(wf.size, -1)  # -1: padding, never written
    for t in range(wf.steps):
        step[wf.slot[wf.bounds[t]:wf.bounds[t + 1]]] = t
    assert sorted(wf.slot.tolist()) == sorted(set(wf.slot.tolist()))  # each value once
    for t in range(wf.steps):
        a, b = wf.bounds[t], wf.bounds[t + 1]
        ctx = step[wf.context(a, b)]
        assert np.all(ctx < t)  # neighbours: decoded earlier, or padding
    # raster positions of grid 1 inside the concatenation, on the anti-diagonals c + 2r
    h0, w0 = shapes[0]
    src = wf.source - h0 * w0
    mask = (src >= 0) & (src < shapes[1][0] * shapes[1][1])
    r, c = np.divmod(src[mask], shapes[1][1])
    assert np.all(np.diff(c + WAVE * r) >= 0)


def test_integer_arm_grid_round_trip_with_large_values():
    torch.manual_seed(0)
    farm = FixedPointArm(*FixedPointArm.quantise([p.detach().numpy() for p in Arm().parameters()]))
    rng = np.random.default_rng(1)
    grids = [rng.integers(-20, 21, s) for s in grid_shapes(13, 9)]
    grids[0][3, 4] = 10**6  # escaped
    grids[2][0, 0] = -(10**5)
    lat, _ = tables()
    out = decode_grids(farm, code_grids(farm, grids, lat), grid_shapes(13, 9), lat)
    assert all(np.array_equal(a, b) for a, b in zip(out, grids))


def test_latent_tables_are_the_recorded_ones():
    # the tables are built from formulas at run time: a different libm would change them,
    # and with them every stream; this digest pins them
    lat, weights = tables()
    assert lat.count == 256 and weights.count == 40
    assert lat.digest()[:16] == LATENT_DIGEST and weights.digest()[:16] == WEIGHT_DIGEST


def test_exact_decode_and_quality(sample_path):
    from PIL import Image

    img = np.asarray(Image.open(sample_path).convert("RGB"))[:48, :40]
    enc = codec.compress_image(img, codec="overfit", quality=4, iterations=150, verify=True)
    out = codec.decompress(enc.data)
    psnr = 10 * np.log10(255**2 / np.mean((out.astype(float) - img) ** 2))
    assert out.shape == img.shape and psnr > 22, psnr
    assert codec.info(enc.data)["codec"] == "overfit"


def test_decoded_pixels_do_not_depend_on_blas_threads(tmp_path, sample_path):
    """The decoder is numpy (no torch): what could change its sums is the BLAS thread count."""
    import os

    from PIL import Image

    img = np.asarray(Image.open(sample_path).convert("RGB"))[:40, :56]
    data = codec.compress_image(img, codec="overfit", quality=2, iterations=30).data
    (tmp_path / "s.lcd").write_bytes(data)
    digests = set()
    for threads in ("1", "2"):
        code = ("import sys, hashlib, codec; from threadpoolctl import threadpool_info; "
                "assert all(p['num_threads'] == %s for p in threadpool_info() if p['user_api'] == 'blas'); "
                "print(hashlib.sha256(codec.decompress(open(sys.argv[1], 'rb').read()).tobytes()).hexdigest())"
                % threads)
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.lcd")], capture_output=True, cwd=ROOT,
                           env=env)
        assert r.returncode == 0, r.stderr
        digests.add(r.stdout.strip())
    assert len(digests) == 1


def test_bad_options_and_streams():
    img = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(codec.CodecError, match="preset"):
        codec.compress_image(img, codec="overfit", preset="ludicrous")
    with pytest.raises(codec.CodecError, match="takes no option"):
        codec.compress_image(img, codec="hyperprior", preset="fast")
    data = codec.compress_image(img, codec="overfit", iterations=5).data
    from codec.fuzzing import reseal
    for bad in (data[:-3], reseal(data[:-9] + bytes([data[-9] ^ 0x5A]) + data[-8:])):
        try:
            out = codec.decompress(bad)
            assert out.shape == (16, 16, 3)  # a flipped latent bit may still decode to an image
        except codec.CodecError:
            pass


def test_complexity_is_within_budget():
    macs = macs_per_pixel(512, 768)
    assert macs["total"] < 3000
    assert set(macs) == {"arm", "upsampling", "synthesis", "total"}


def _integer_arm_reference(arrays: list[np.ndarray], ctx: np.ndarray) -> np.ndarray:
    """The ARM's defining integer arithmetic, in int64 with Python-style floor shifts."""
    w1, b1, w2, b2, w3, b3 = arrays
    f, top = FixedPointArm.FRAC, FixedPointArm.ACTIVATION_LIMIT
    x = np.clip(ctx, -FixedPointArm.INPUT_LIMIT, FixedPointArm.INPUT_LIMIT)
    h = np.clip(x @ w1.T + b1, 0, top)
    h = np.clip(((h @ w2.T) >> f) + b2, 0, top)
    return ((h @ w3.T) >> f) + b3


def test_float_blas_arm_equals_integer_arithmetic_at_the_limits():
    # the decoder runs the ARM as float64 matrix products; they must give the integers of
    # the definition exactly, also with every weight, input and activation at its bound
    rng = np.random.default_rng(3)
    lim = FixedPointArm.WEIGHT_LIMIT
    for trial in range(4):
        arrays = [rng.integers(-lim, lim + 1, s) for s in ARM_SHAPES]
        if trial == 0:
            arrays = [np.full_like(a, lim) for a in arrays]
        ctx = rng.integers(-3 * FixedPointArm.INPUT_LIMIT, 3 * FixedPointArm.INPUT_LIMIT, (5000, len(CONTEXT)))
        arm = FixedPointArm(*arrays)
        assert np.array_equal(arm._outputs(ctx).astype(np.int64), _integer_arm_reference(arrays, ctx))
    with pytest.raises(ValueError):
        FixedPointArm(*[a * 0 + lim + 1 for a in arrays])


def test_network_shapes_are_the_stream_order():
    assert [tuple(p.shape) for p in Arm().parameters()] == list(ARM_SHAPES)
    assert [tuple(p.shape) for p in Synthesis().parameters()] == list(SYNTHESIS_SHAPES)


def test_numpy_decoder_matches_the_fitted_torch_model():
    # the encoder fits with torch (dense upsampling matrices, nn layers); the decoder runs
    # numpy (4-tap bicubic, explicit MLP): same function up to float rounding, and the same
    # bicubic as torch's interpolate
    rng = np.random.default_rng(4)
    h, w = 37, 53
    grids = [rng.integers(-6, 7, s) for s in grid_shapes(h, w)]
    up = Upsampler(h, w)([torch.from_numpy(g.astype(np.float32))[None, None] for g in grids])
    for i, g in enumerate(grids):
        ours = upsample(g.astype(np.float32), 2**i, h, w)
        ref = torch.nn.functional.interpolate(torch.from_numpy(g.astype(np.float32))[None, None], scale_factor=2**i,
                                              mode="bicubic", align_corners=False)[0, 0, :h, :w].numpy()
        assert np.abs(ours - ref).max() < 1e-5 and np.abs(up[..., i].numpy() - ours).max() < 1e-5
    torch.manual_seed(1)
    syn = Synthesis()
    with torch.no_grad():
        x = syn(up)[0].permute(1, 2, 0).numpy()
    img = synthesize([p.detach().numpy() for p in syn.parameters()], grids, h, w)
    assert np.abs(img.astype(np.float64) - np.clip(x, 0, 1) * 255).max() < 0.5 + 1e-3


def test_decoding_imports_no_torch(tmp_path, sample_path):
    from PIL import Image

    img = np.asarray(Image.open(sample_path).convert("RGB"))[:24, :24]
    (tmp_path / "s.lcd").write_bytes(codec.compress_image(img, codec="overfit", iterations=5).data)
    code = ("import sys, codec; codec.decompress(open(sys.argv[1], 'rb').read()); "
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.lcd")], capture_output=True, cwd=ROOT, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_fit_keeps_its_best_rounded_iterate():
    from codec.overfit import model

    img = np.asarray(np.random.default_rng(5).integers(0, 256, (16, 16, 3)), dtype=np.uint8)
    img.setflags(write=False)  # a read-only input is fine and is not modified
    latents, arm, syn, report = model.fit(img, 0.0067, 20)
    assert report.iterations == 20 and np.isfinite(report.bpp_estimate)
    # the returned latents reproduce the reported rate of the kept iterate
    up = model.Upsampler(16, 16)
    q = [torch.round(y) for y in latents]
    with torch.no_grad():
        bits = sum(model.laplace_bits(y[0, 0], *arm(model.context_stack(y)[0])).sum() for y in q)
        mse = float(torch.mean((syn(up(q)) - torch.from_numpy(img.copy()).permute(2, 0, 1)[None] / 255.0) ** 2))
    assert abs(float(bits) / 256 - report.bpp_estimate) < 1e-4
    assert abs(10 * np.log10(1 / mse) - report.psnr) < 1e-3


def test_synthesis_weights_that_overflow_give_defined_pixels_without_warnings():
    """A stream chooses the synthesis weights (int32 units of 2^-SYN_FRAC): overflow in float32
    must neither warn nor leave the pixel to the platform's NaN-to-uint8 cast."""
    import warnings

    weights = [np.zeros(s, np.float32) for s in SYNTHESIS_SHAPES]
    weights[5][:] = [1e38, 1e38, 0.5]  # b3: the synthesis output before the 3x3 refinement
    wr = weights[6]
    wr[0, 0, 1, 0], wr[0, 0, 1, 1] = -4.0, 4.0  # channel 0: -inf + inf = NaN
    wr[1, 1, 1, 1] = 4.0  # channel 1: +inf
    grids = [np.zeros(s, np.int64) for s in grid_shapes(4, 5)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = synthesize(weights, grids, 4, 5)
    assert out.shape == (4, 5, 3)
    assert (out[..., 0] == 0).all() and (out[..., 1] == 255).all() and (out[..., 2] == 128).all()
