"""Every sliced context codec (MLICv2, S2LIC) through the shared codec, weights and training
code: an untrained head is the hyperprior, the decoder reproduces the encoder exactly, the
integer model follows the float one, every ablation codes, corrupt streams fail cleanly,
refinement through the contexts never hurts."""

from dataclasses import replace

import numpy as np
import pytest
import torch

import codec
from codec.context.codec import ContextCodec
from codec.context.training import Stage1
from codec.context.weights import export_weights, float_entropy_model, load_weights_file
from codec.hyperprior.coding import TileGrid
from codec.hyperprior.coding import load_codec as load_hyperprior
from codec.hyperprior.weights import installed_weights as hyperprior_weights
from codec.metrics import psnr
from codec.mlicv2.weights import FAMILY as MLICV2
from codec.s2lic.weights import FAMILY as S2LIC
from codec.weightfiles import most_trained

FAMILIES = {f.name: f for f in (MLICV2, S2LIC)}


def _hyperprior_path():
    return most_trained(hyperprior_weights()).path


def _weights(family, tmp_path, scale: float, seed: int = 0, cfg=None):
    """A weights file around the installed hyperprior; the heads' last layers (and the
    deformable sampling) drawn at ``scale``."""
    torch.manual_seed(seed)
    em = family.float_class(cfg or family.config_class())
    with torch.no_grad():
        for name, p in em.named_parameters():
            if "layers.2" in name or "sampling.weight" in name:
                p.normal_(0.0, scale)
    path = tmp_path / f"{family.name}-{scale}.safetensors"
    export_weights(family, _hyperprior_path(), em, path, {"steps": 0})
    return load_weights_file(family, path)


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request):
    return FAMILIES[request.param]


@pytest.fixture(scope="module")
def random_weights(family, tmp_path_factory):
    return _weights(family, tmp_path_factory.mktemp("w"), 0.02)


def test_zero_heads_code_exactly_what_the_hyperprior_codes(family, tmp_path, kodak_crops):
    """An untrained head predicts a correction of nothing: the pixels are the hyperprior's."""
    impl = ContextCodec(_weights(family, tmp_path, 0.0), None)
    hp = load_hyperprior()
    img = kodak_crops[0][:64, :80]
    for q in (1, 5):
        ours, recon = impl.encode_rgb(img, q, reconstruct=True)
        theirs, hp_recon = hp.encode_rgb(img, q, reconstruct=True)
        assert np.array_equal(recon, hp_recon)
        assert abs(sum(map(len, ours)) - sum(map(len, theirs))) <= 8 * 16  # grouping only


def test_decoder_reproduces_the_encoder_exactly(random_weights, kodak_crops):
    impl = ContextCodec(random_weights, None)
    for img, q in ((kodak_crops[1][:48, :80], 2), (kodak_crops[0][:37, :53], 6)):
        sections, recon = impl.encode_rgb(img, q, reconstruct=True)
        out = impl.decode_rgb(tuple(sections), img.shape[1], img.shape[0], q)
        assert np.array_equal(out, recon)
        assert psnr(img, out) > 20.0
        assert impl.encode_rgb(img, q)[0] == sections  # byte-identical on a second run


def test_integer_parameters_follow_the_float_model(random_weights, kodak_crops):
    """Same weights, same latent: the integer model's decoded latent is the float model's up
    to fixed-point rounding."""
    impl = ContextCodec(random_weights, None)
    em = float_entropy_model(random_weights)
    img = kodak_crops[1][:64, :64]
    q = 3
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        gain, inv_gain, hgain, inv_hgain = impl.model.gains(torch.tensor([q - 1]))
        y0 = impl.model.g_a(x)
        z = torch.round(impl.model.h_a(y0) * hgain)
        tile = impl._tile_model(z.numpy().astype(np.int32), TileGrid.for_image(64, 64), 0, 0, q)
        hyper = torch.from_numpy(tile.hyper).permute(2, 0, 1)[None].float() / 4096
        y = y0 * gain
        out = em(y, hyper, torch.from_numpy(random_weights.tables.hyper.gain[q - 1])[None, :, None, None],
                 torch.from_numpy(random_weights.inv_gain[q - 1])[None, :, None, None], torch.tensor([q - 1]))
    from codec.context import coding as staged
    staged.encode(tile, y[0].permute(1, 2, 0).numpy(), random_weights.tables.y)
    ref = out["y_hat"][0].permute(1, 2, 0).numpy()
    # the decoded latents agree except where a mean fell on the other side of a rounding edge
    close = np.abs(tile.y_hat - ref) < 0.05
    assert close.mean() > 0.97


def test_stage1_loss_trains_on_cached_latents(family):
    from codec.hyperprior.weights import load_model_file

    hp, _ = load_model_file(_hyperprior_path())
    em = family.float_class(family.config(hp.config.M, hp.config.qualities, hp.config.scale_min))
    stage = Stage1(hp, em, torch.ones(hp.config.M) * 1e-3)
    y0 = torch.randn(2, hp.config.M, 8, 8)
    z = torch.randint(-3, 4, (2, hp.config.N, 2, 2)).to(torch.int16)
    q = torch.tensor([0, 5])
    out = stage.loss(y0, z, q)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and any(p.grad is not None and p.grad.abs().sum() > 0 for p in em.parameters())
    base = stage.baseline(y0, z, q)
    exact = stage.loss(y0, z, q, noise=False)
    # an untrained model is the hyperprior: same discrete rate
    assert torch.allclose(exact["bpp"], base["bpp"], rtol=1e-4)


@pytest.mark.parametrize("name,off", [(f.name, a) for f in FAMILIES.values() for a in f.ablations])
def test_every_ablation_builds_and_codes(tmp_path, name, off, kodak_crops):
    family = FAMILIES[name]
    cfg = replace(family.config_class(), **{off: False})
    impl = ContextCodec(_weights(family, tmp_path, 0.02, seed=1, cfg=cfg), None)
    img = kodak_crops[0][:32, :48]
    sections, recon = impl.encode_rgb(img, 4, reconstruct=True)
    assert np.array_equal(impl.decode_rgb(tuple(sections), 48, 32, 4), recon)


def test_unknown_ablation_is_a_codec_error(family):
    with pytest.raises(codec.CodecError, match="unknown contexts"):
        family.config(128, 6, 0.11, ["nonsense"])


def test_corrupt_tile_stream_is_a_codec_error(random_weights, kodak_crops):
    impl = ContextCodec(random_weights, None)
    img = kodak_crops[1][:32, :32]
    sections, _ = impl.encode_rgb(img, 3, reconstruct=False)
    bad = list(sections)
    bad[2] = bad[2] + b"\1"  # not a whole number of 32-bit words
    with pytest.raises(codec.CodecError):
        impl.decode_rgb(tuple(bad), 32, 32, 3)
    rng = np.random.default_rng(5)
    for _ in range(10):  # garbage either fails cleanly or decodes to an image of the right shape
        bad[2] = rng.integers(0, 256, 4 * int(rng.integers(0, 20)), dtype=np.uint8).tobytes()
        try:
            out = impl.decode_rgb(tuple(bad), 32, 32, 3)
        except codec.CodecError:
            continue
        assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_refinement_through_the_contexts_never_hurts_and_decodes_exactly(random_weights, kodak_crops):
    impl = ContextCodec(random_weights, None)
    img = kodak_crops[0][:48, :64]
    q = 3
    lam = impl.model.config.lambdas[q - 1]

    def loss(enc):
        out = impl.decode_rgb(enc.sections, 64, 48, q)
        assert np.array_equal(out, enc.reconstruction)
        bpp = 8 * sum(map(len, enc.sections)) / (48 * 64)
        return bpp + lam * 255**2 * float(((img / 255.0 - out / 255.0) ** 2).mean())

    plain = impl.encode(img, q, reconstruct=True)
    refined = impl.encode(img, q, reconstruct=True, refine="15")
    # the refined latent is kept only when its rounded loss is lower (up to the coder's bytes)
    assert loss(refined) <= loss(plain) + 8 * 8 / (48 * 64)
