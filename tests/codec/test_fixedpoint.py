"""The fixed-point layers: exact against integer and float64 references, bounds enforced,
results independent of summation order, thread count and BLAS kernel."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_info, threadpool_limits

from codec import fixedpoint
from codec.fixedpoint import (EXACT_LIMIT, Conv2d, ConvTranspose2d, FixedPointStack, LeakyReLU, Linear, ReLU,
                              build_layer, shift_round)

ROOT = Path(__file__).resolve().parents[2]


# -- integer references ----------------------------------------------------------------------
def _pair(v):
    return (v, v) if isinstance(v, int) else v


def conv_ref(x, w, stride=1, padding=0, mask=None):
    """int64 convolution by explicit taps: x (H, W, in), w (out, in, kh, kw) -> (Ho, Wo, out)."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    x, w = x.astype(np.int64), w.astype(np.int64)
    if mask is not None:
        w = w * np.asarray(mask, dtype=np.int64)
    h, wd, _ = x.shape
    cout, _, kh, kw = w.shape
    xp = np.pad(x, ((ph, ph), (pw, pw), (0, 0)))
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((ho, wo, cout), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            out += xp[ky:ky + sh * (ho - 1) + 1:sh, kx:kx + sw * (wo - 1) + 1:sw] @ w[:, :, ky, kx].T
    return out


def transposed_ref(x, w, stride, padding, output_padding):
    """int64 transposed convolution by scattering: w (in, out, kh, kw)."""
    (sh, sw), (ph, pw), (oh, ow) = _pair(stride), _pair(padding), _pair(output_padding)
    x, w = x.astype(np.int64), w.astype(np.int64)
    h, wd, _ = x.shape
    _, cout, kh, kw = w.shape
    full = np.zeros(((h - 1) * sh + kh + oh, (wd - 1) * sw + kw + ow, cout), dtype=np.int64)
    for iy in range(h):
        for ix in range(wd):
            full[iy * sh:iy * sh + kh, ix * sw:ix * sw + kw] += np.einsum("i,iokl->klo", x[iy, ix], w)
    ho, wo = (h - 1) * sh - 2 * ph + kh + oh, (wd - 1) * sw - 2 * pw + kw + ow
    return full[ph:ph + ho, pw:pw + wo]


def finish_ref(s, spec):
    """The requantisation, activation and clip of a spec, in int64 (>> is a floor shift)."""
    s = s.astype(np.int64)
    b = np.zeros(s.shape[-1], np.int64) if spec.bias is None else np.asarray(spec.bias).astype(np.int64)
    if not spec.bias_after_shift:
        s = s + b
    if spec.shift:
        if spec.rounding == "half_up":
            s = s + (1 << (spec.shift - 1))
        s = s >> spec.shift
    if spec.bias_after_shift:
        s = s + b
    if isinstance(spec.activation, ReLU):
        s = np.maximum(s, 0)
    elif isinstance(spec.activation, LeakyReLU):
        s = np.where(s < 0, (s * spec.activation.slope) >> spec.activation.shift, s)
    if spec.clip is not None:
        s = np.clip(s, *spec.clip)
    return s


def torch_conv(x, w, **kw):
    """torch's float64 convolution, channels last in and out."""
    out = F.conv2d(torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float64)), torch.from_numpy(w.astype(np.float64)),
                   **kw)
    return out[0].numpy().transpose(1, 2, 0)


def torch_conv_transpose(x, w, **kw):
    out = F.conv_transpose2d(torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float64)),
                             torch.from_numpy(w.astype(np.float64)), **kw)
    return out[0].numpy().transpose(1, 2, 0)


# -- each layer type ---------------------------------------------------------------------------
CONV_CASES = [  # kernel, stride, padding, mask
    ((1, 1), 1, 0, None),
    ((3, 3), 1, 1, None),
    ((5, 5), 1, 2, None),
    ((3, 3), 2, 1, None),
    ((5, 5), 2, 2, None),
    ((3, 5), (2, 1), (1, 2), None),
    ((4, 4), 3, 0, None),
    ((5, 5), 1, 2, "causal"),  # autoregressive context: rows above, and the left of the row
    ((5, 5), 1, 2, "checkerboard"),  # checkerboard context: the anchors around a non-anchor
]


def _mask(kind, kh, kw):
    if kind is None:
        return None
    yy, xx = np.mgrid[:kh, :kw]
    if kind == "causal":
        return (yy < kh // 2) | ((yy == kh // 2) & (xx < kw // 2))
    return (yy + xx) % 2 == 1


@pytest.mark.parametrize("kernel,stride,padding,mask_kind", CONV_CASES)
def test_conv2d_equals_integer_and_torch_references(kernel, stride, padding, mask_kind):
    rng = np.random.default_rng(sum(kernel) + 7 * (mask_kind is not None))
    kh, kw = kernel
    w = rng.integers(-3000, 3001, (6, 5, kh, kw))
    x = rng.integers(-4000, 4001, (9, 11, 5))
    mask = _mask(mask_kind, kh, kw)
    spec = Conv2d(weight=w, bias=rng.integers(-10**6, 10**6, 6), stride=stride, padding=padding, mask=mask,
                  shift=9, rounding="half_up", activation=LeakyReLU(41, 12), clip=(-5000, 5000))
    layer = build_layer(spec, 4000)
    sums = layer.products(x.astype(np.float64))
    ref = conv_ref(x, w, stride, padding, mask)
    assert np.array_equal(sums, ref)  # exact: every sum is an integer below 2^53
    wm = w if mask is None else w * mask
    assert np.array_equal(sums, torch_conv(x, wm, stride=stride, padding=padding))
    out = layer(x.astype(np.float64))
    assert np.array_equal(out, finish_ref(ref, spec))
    lo, hi = layer.output_range
    assert lo <= out.min() and out.max() <= hi
    if mask is not None:  # masked taps are not computed at all
        assert layer.weight.shape[0] == int(mask.sum()) * 5


@pytest.mark.parametrize("kernel,stride,padding,output_padding", [
    (5, 2, 2, 1),  # the hyper-synthesis' upsampling layers
    (4, 2, 1, 0),
    (3, 3, 0, 2),
    ((3, 5), (2, 1), (1, 2), (1, 0)),
    (1, 1, 0, 0),
])
def test_transposed_conv_equals_integer_and_torch_references(kernel, stride, padding, output_padding):
    rng = np.random.default_rng(3)
    kh, kw = _pair(kernel)
    w = rng.integers(-3000, 3001, (5, 4, kh, kw))
    x = rng.integers(-4000, 4001, (6, 7, 5))
    spec = ConvTranspose2d(weight=w, bias=rng.integers(-10**6, 10**6, 4), stride=stride, padding=padding,
                           output_padding=output_padding, shift=7, activation=ReLU(), clip=(0, 10**5))
    layer = build_layer(spec, 4000)
    sums = layer.products(x.astype(np.float64))
    ref = transposed_ref(x, w, stride, padding, output_padding)
    assert np.array_equal(sums, ref)
    assert np.array_equal(sums, torch_conv_transpose(x, w, stride=stride, padding=padding,
                                                     output_padding=output_padding))
    assert np.array_equal(layer(x.astype(np.float64)), finish_ref(ref, spec))


@pytest.mark.parametrize("bias_after_shift", [False, True])
def test_linear_equals_integer_reference(bias_after_shift):
    rng = np.random.default_rng(5)
    w = rng.integers(-2**16, 2**16 + 1, (16, 9))
    x = rng.integers(-2**12, 2**12 + 1, (300, 9))
    spec = Linear(weight=w, bias=rng.integers(-2**16, 2**16, 16), shift=8, bias_after_shift=bias_after_shift,
                  activation=ReLU(), clip=(0, 2**24))
    layer = build_layer(spec, 2**12)
    assert np.array_equal(layer.products(x.astype(np.float64)), x @ w.T)
    assert np.array_equal(layer(x.astype(np.float64)), finish_ref(x @ w.T, spec))
    # any leading axes
    assert np.array_equal(layer.products(x.reshape(10, 30, 9).astype(np.float64)), (x @ w.T).reshape(10, 30, 16))
    f64 = torch.from_numpy(x.astype(np.float64)) @ torch.from_numpy(w.T.astype(np.float64))
    assert np.array_equal(layer.products(x.astype(np.float64)), f64.numpy())


def test_rounding_shift_and_leaky_relu_match_integer_rules():
    rng = np.random.default_rng(9)
    x = np.concatenate([rng.integers(-2**40, 2**40, 5000), np.arange(-40, 41),
                        np.array([-2**52 + 1, 2**52 - 1, -(5 << 11) - 2048, (5 << 11) + 2048])])
    for shift in (0, 1, 5, 12):
        assert np.array_equal(shift_round(x.astype(np.float64), shift, "floor"), x >> shift)
        half = (x + (1 << (shift - 1))) >> shift if shift else x
        assert np.array_equal(shift_round(x.astype(np.float64), shift, "half_up"), half)
    # exact halves round up, also below zero: -2.5 -> -2, 2.5 -> 3
    assert shift_round(np.array([-5.0, 5.0]), 1, "half_up").tolist() == [-2.0, 3.0]
    layer = build_layer(Linear(weight=np.eye(3, dtype=np.int64), activation=LeakyReLU(41, 12)), 2**40)
    v = rng.integers(-2**40, 2**40, (1000, 3))
    assert np.array_equal(layer(v.astype(np.float64)), np.where(v < 0, (v * 41) >> 12, v))


def test_to_fixed_rounds_half_to_even_and_clips():
    assert fixedpoint.to_fixed(np.array([0.5, 1.5, -0.5, -2.5]) / 4, 2).tolist() == [0.0, 2.0, -0.0, -2.0]
    assert fixedpoint.to_fixed(np.array([3.0, -3.0]), 4, limit=40).tolist() == [40.0, -40.0]
    w16 = np.float16(0.333)
    assert fixedpoint.to_fixed(np.array([w16]), 12)[0] == np.round(float(w16) * 4096)


# -- a stack is any list of layers -----------------------------------------------------------
def test_stack_of_mixed_layers_equals_the_integer_reference():
    rng = np.random.default_rng(11)
    specs = [
        Conv2d(weight=rng.integers(-200, 201, (8, 3, 5, 5)), bias=rng.integers(-999, 999, 8), padding=2,
               mask=_mask("checkerboard", 5, 5), shift=6, activation=LeakyReLU(41, 12), clip=(-2**20, 2**20)),
        ConvTranspose2d(weight=rng.integers(-200, 201, (8, 6, 5, 5)), stride=2, padding=2, output_padding=1,
                        shift=8, rounding="half_up", activation=ReLU(), clip=(0, 2**20)),
        Conv2d(weight=rng.integers(-200, 201, (4, 6, 1, 1)), shift=4),
        Conv2d(weight=rng.integers(-200, 201, (5, 4, 3, 3)), bias=rng.integers(-999, 999, 5), stride=2,
               padding=1, shift=3, bias_after_shift=True, clip=(-2**20, 2**20)),
        Linear(weight=rng.integers(-200, 201, (2, 5)), shift=2),
    ]
    stack = FixedPointStack(specs, 1000)
    x = rng.integers(-1500, 1500, (7, 9, 3))  # beyond the input range: clipped
    got = stack(x)
    ref = np.clip(x, -1000, 1000)
    for spec in specs:
        if isinstance(spec, Conv2d):
            s = conv_ref(ref, spec.weight, spec.stride, spec.padding, spec.mask)
        elif isinstance(spec, ConvTranspose2d):
            s = transposed_ref(ref, spec.weight, spec.stride, spec.padding, spec.output_padding)
        else:
            s = ref.astype(np.int64) @ spec.weight.T
        ref = finish_ref(s, spec)
    assert got.shape == (7, 9, 2) and np.array_equal(got, ref)
    lo, hi = stack.output_range
    assert lo <= got.min() and got.max() <= hi


def test_stack_refuses_non_integer_inputs_and_weights():
    stack = FixedPointStack([Linear(weight=np.ones((2, 3)))], 10)
    assert stack(np.array([[1.0, 2.0, 3.0]])).tolist() == [[6.0, 6.0]]
    for bad in (np.array([[1.5, 0.0, 0.0]]), np.array([[np.nan, 0.0, 0.0]])):
        with pytest.raises(ValueError, match="integers"):
            stack(bad)
    with pytest.raises(ValueError, match="integers"):
        FixedPointStack([Linear(weight=np.full((2, 3), 0.5))], 10)
    with pytest.raises(ValueError, match="shape"):
        FixedPointStack([Linear(weight=np.ones((2, 3)), bias=np.ones(3))], 10)


# -- the bound checks ------------------------------------------------------------------------
def test_linear_bound_is_checked_to_the_last_integer():
    x_max = 2**20
    w = np.full((1, 8), 2**30, dtype=np.int64)  # sum |w| * x_max = 2^53 exactly
    with pytest.raises(ValueError, match="exact"):
        build_layer(Linear(weight=w), x_max)
    w[0, 0] -= 1  # 2^53 - 2^20
    build_layer(Linear(weight=w, bias=[2**20 - 1]), x_max)  # worst case 2^53 - 1: allowed
    with pytest.raises(ValueError, match="exact"):
        build_layer(Linear(weight=w, bias=[2**20]), x_max)
    with pytest.raises(ValueError, match="exact"):  # the rounding offset counts too
        build_layer(Linear(weight=w, bias=[2**20 - 1], shift=1, rounding="half_up"), x_max)


def test_conv_bounds_count_every_tap_and_transposed_bounds_one_phase():
    w = np.zeros((1, 2, 3, 3), dtype=np.int64)
    w[0] = 2**40
    # 18 taps * 2^40 * x: the worst case passes 2^53 at x = 2^53 / (18 * 2^40) = 455.1
    build_layer(Conv2d(weight=w, padding=1), 455)
    with pytest.raises(ValueError, match="exact"):
        build_layer(Conv2d(weight=w, padding=1), 456)
    # a masked tap does not count
    mask = np.ones((3, 3), bool)
    mask[2, 2] = False
    build_layer(Conv2d(weight=w, padding=1, mask=mask), 480)
    # a stride-2 transposed 3x3 kernel: an output sees the taps of one phase, at most 2x2 of
    # them (per input channel), never all 9
    wt = np.full((2, 1, 3, 3), 2**40, dtype=np.int64)
    build_layer(ConvTranspose2d(weight=wt, stride=2, padding=1, output_padding=1), 1023)  # 8 * 2^40 * 1023 < 2^53
    with pytest.raises(ValueError, match="exact"):
        build_layer(ConvTranspose2d(weight=wt, stride=2, padding=1, output_padding=1), 1024)


def test_bounds_propagate_through_clips_activations_and_biases():
    big = np.full((1, 1), 2**26, dtype=np.int64)
    # unclipped, the first layer's outputs reach 2^26 * 2^26 = 2^52, too much for the second
    with pytest.raises(ValueError, match="layer 1"):
        FixedPointStack([Linear(weight=big), Linear(weight=big)], 2**26)
    FixedPointStack([Linear(weight=big, clip=(-2**26, 2**26)), Linear(weight=big)], 2**26)
    # a shift divides the bound; a bias after it adds to it
    FixedPointStack([Linear(weight=big, shift=26), Linear(weight=big)], 2**26)
    with pytest.raises(ValueError, match="layer 0"):
        FixedPointStack([Linear(weight=big, bias=[2**53 - 1], bias_after_shift=True, shift=26)], 2**26)
    # the LeakyReLU's product is checked
    with pytest.raises(ValueError, match="LeakyReLU"):
        build_layer(Linear(weight=big, activation=LeakyReLU(2**10, 12)), 2**26)
    layer = build_layer(Linear(weight=big, activation=ReLU()), 3)
    assert layer.output_range == (0, 3 * 2**26)
    with pytest.raises(ValueError):
        FixedPointStack([Linear(weight=big)], 2**53)


def test_values_at_the_bound_are_exact_and_order_free():
    """Weights and inputs at their limits, sums just below 2^53: float64 BLAS, a reversed
    sequential sum, a pairwise sum and Python integers agree. Past 2^53 they would not."""
    rng = np.random.default_rng(12)
    k, x_max = 64, 2**20
    w = rng.choice([-1, 1], (8, k)) * rng.integers(2**26, 2**27, (8, k))  # sum |w| * x_max < 2^53
    layer = build_layer(Linear(weight=w), x_max)
    assert layer.sum_bound < EXACT_LIMIT
    x = rng.choice([-x_max, x_max], (200, k)).astype(np.float64)
    x[:10] = x_max * np.sign(w[0])  # rows where every product of output 0 has the same sign
    x[10:20] = -x_max * np.sign(w[0])
    blas = layer.products(x)
    terms = x[:, :, None] * w.T[None].astype(np.float64)  # (n, k, out) float64 products
    reversed_sum = np.zeros_like(blas)
    for i in range(k - 1, -1, -1):
        reversed_sum += terms[:, i]
    pairwise = terms
    while pairwise.shape[1] > 1:
        pairwise = pairwise[:, 0::2] + pairwise[:, 1::2]
    exact = [[sum(int(a) * int(b) for a, b in zip(row, col)) for col in w] for row in x[:20]]
    assert np.array_equal(blas, reversed_sum) and np.array_equal(blas, pairwise[:, 0])
    assert blas[:20].astype(np.int64).tolist() == exact
    assert np.abs(blas[:20, 0]).min() > 2**52  # the bound was nearly reached
    # the same computation 4x larger is no longer exact: summation order shows
    big = terms * 4 + 1
    fwd = np.zeros_like(blas)
    rev = np.zeros_like(blas)
    for i in range(k):
        fwd += big[:, i]
        rev += big[:, k - 1 - i]
    assert not np.array_equal(fwd, rev)


# -- threads and BLAS kernels ----------------------------------------------------------------
def _big_stack():
    rng = np.random.default_rng(21)
    return FixedPointStack([
        Conv2d(weight=rng.integers(-2**12, 2**12, (48, 32, 3, 3)), bias=rng.integers(-2**20, 2**20, 48),
               padding=1, shift=12, rounding="half_up", activation=LeakyReLU(41, 12), clip=(-2**28, 2**28)),
        ConvTranspose2d(weight=rng.integers(-2**12, 2**12, (48, 32, 5, 5)), stride=2, padding=2,
                        output_padding=1, shift=12, clip=(-2**28, 2**28)),
    ], 2**24), rng.integers(-2**24, 2**24, (40, 40, 32))


def test_blas_and_torch_threads_do_not_change_outputs():
    stack, x = _big_stack()
    outs = []
    for n in (1, 2):
        with threadpool_limits(limits=n, user_api="blas"):
            outs.append(stack(x))
    assert np.array_equal(outs[0], outs[1])
    # torch's float64 convolution at 1 and 2 threads gives the same integers too
    layer = stack.layers[0]
    before = torch.get_num_threads()
    try:
        refs = []
        for n in (1, 2):
            torch.set_num_threads(n)
            refs.append(torch_conv(x, layer.spec.weight, padding=1))
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(refs[0], refs[1])
    assert np.array_equal(layer.products(np.clip(x, -2**24, 2**24).astype(np.float64)), refs[0])


def _kernel_script() -> str:
    """A script that prints the digest of :func:`_big_stack`'s output (numpy and codec only)."""
    import inspect

    return ("import hashlib\nimport numpy as np\n"
            "from codec.fixedpoint import Conv2d, ConvTranspose2d, FixedPointStack, LeakyReLU\n"
            + inspect.getsource(_big_stack)
            + "stack, x = _big_stack()\nprint(hashlib.sha256(stack(x).tobytes()).hexdigest())\n")


def _openblas_kernels():
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    if not blas or blas[0]["internal_api"] != "openblas" or not Path("/proc/cpuinfo").exists():
        return []
    flags = set(Path("/proc/cpuinfo").read_text().split())
    kernels = ["Prescott"] if "sse3" in flags or "pni" in flags else []  # SSE3, no FMA
    if {"avx2", "fma"} <= flags:
        kernels.append("Haswell")  # AVX2 with FMA
    if {"avx512f", "avx512dq", "avx512bw", "avx512vl"} <= flags:
        kernels.append("SkylakeX")  # AVX-512
    return kernels


def test_different_blas_kernels_give_the_same_integers():
    """OpenBLAS picks its kernel for the CPU; forcing the others on this one shows that a
    machine with another kernel (no FMA, AVX2, AVX-512) computes the same outputs."""
    kernels = _openblas_kernels()
    if len(kernels) < 2:
        pytest.skip("needs OpenBLAS on an x86 CPU with more than one usable kernel")
    digests = {}
    for kernel in kernels:
        env = {**os.environ, "OPENBLAS_CORETYPE": kernel, "OPENBLAS_NUM_THREADS": "2"}
        r = subprocess.run([sys.executable, "-c", _kernel_script()], env=env, capture_output=True, text=True,
                           cwd=ROOT)
        assert r.returncode == 0, r.stderr
        digests[kernel] = r.stdout.strip()
    stack, x = _big_stack()
    assert set(digests.values()) == {hashlib.sha256(stack(x).tobytes()).hexdigest()}, digests


# -- the ported networks ---------------------------------------------------------------------
def test_hyper_synthesis_follows_its_format_definition():
    """The integer hyper-synthesis (FORMAT.md, `hyperprior-lite`) against the definition
    written out with int64 arithmetic, on random float16 weights of reduced width."""
    from codec.hyperprior.integer import IntegerHyperSynthesis

    rng = np.random.default_rng(2)
    n, m = 6, 5
    layers = [((rng.standard_normal((n, n, 5, 5)) * 0.2).astype(np.float16), (rng.standard_normal(n) * 0.1).astype(np.float16)),
              ((rng.standard_normal((n, 8, 5, 5)) * 0.2).astype(np.float16), (rng.standard_normal(8) * 0.1).astype(np.float16)),
              ((rng.standard_normal((2 * m, 8, 3, 3)) * 0.2).astype(np.float16), (rng.standard_normal(2 * m) * 0.1).astype(np.float16))]
    inv = rng.integers(2000, 9000, (3, n)).astype(np.int32)
    gain = rng.uniform(0.5, 2, (3, m)).astype(np.float32)
    hyper = IntegerHyperSynthesis(layers, inv, gain, 0.11)
    z = rng.integers(-6000, 6000, (1, n, 3, 4)).astype(np.int32)
    x = np.clip(z[0].transpose(1, 2, 0).astype(np.int64), -4096, 4096) * inv[1].astype(np.int64)
    for i, (w, b) in enumerate(layers):
        wi = np.round(w.astype(np.float64) * 4096).astype(np.int64)
        bi = np.round(b.astype(np.float64) * 2**24).astype(np.int64)
        s = transposed_ref(x, wi, 2, 2, 1) if i < 2 else conv_ref(x, wi, 1, 1)
        x = (s + bi + 2048) >> 12
        if i < 2:
            x = np.where(x < 0, (x * 41) >> 12, x)
        x = np.clip(x, -2**28, 2**28)
    assert np.array_equal(hyper.fixed_outputs(z, 2), x.transpose(2, 0, 1))
    mu, sigma = hyper(z, 2)
    assert mu.shape == sigma.shape == (1, m, 12, 16) and mu.dtype == np.float32
