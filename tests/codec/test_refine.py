"""Encode-time latent refinement (stochastic Gumbel annealing) for amortized codecs."""

import numpy as np
import pytest
import torch

import codec
from codec.metrics import psnr
from codec.refine import RefineProblem, hard_round, parse_refine, rd_loss, refine


def test_refinement_lowers_the_rd_loss_of_a_toy_problem() -> None:
    torch.manual_seed(0)
    target = torch.rand(1, 3, 8, 8)
    weight = torch.randn(3, 4) * 0.3

    def synthesize(latent: torch.Tensor) -> torch.Tensor:
        up = torch.nn.functional.interpolate(latent, size=(8, 8), mode="nearest")
        return torch.einsum("ck,bkhw->bchw", weight, up).sigmoid()

    latent = torch.randn(1, 4, 2, 2) * 2
    problem = RefineProblem(latent=latent, mean=torch.zeros_like(latent), scale=torch.full_like(latent, 2.0),
                            synthesize=synthesize, target=target, lam=0.05)
    before = rd_loss(problem, hard_round(problem, latent))[0]
    out = refine(problem, 200, lr=0.05)
    after = rd_loss(problem, hard_round(problem, out))[0]
    assert after < before
    assert refine(problem, 0) is latent


def test_refined_hyperprior_streams_decode_exactly_and_cost_less(kodak_crops) -> None:
    img = kodak_crops[0]
    plain = codec.compress(img, quality=3)
    refined = codec.compress(img, quality=3, refine=40, verify=True)  # verify: the decoder reproduces it
    lam = 0.0067  # quality 3
    cost = {}
    for name, data in (("plain", plain), ("refined", refined)):
        mse = 10 ** (-psnr(img, codec.decompress(data)) / 10)
        cost[name] = 8 * len(data) / (img.shape[0] * img.shape[1]) + lam * 255**2 * mse
    assert cost["refined"] < cost["plain"]


def test_refine_settings_and_limits() -> None:
    assert parse_refine(None) == parse_refine("none") == 0
    assert 0 < parse_refine("fast") < parse_refine("slow") and parse_refine("25") == parse_refine(25) == 25
    for bad in ("ludicrous", "-1", 10**6):
        with pytest.raises(codec.CodecError):
            parse_refine(bad)
    with pytest.raises(codec.CodecError, match="one tile"):
        codec.compress(np.zeros((16, 1040, 3), np.uint8), refine="fast")
    with pytest.raises(codec.CodecError, match="takes no option refine"):
        codec.compress(np.zeros((28, 28), np.uint8), codec="pc-mnist", refine="fast")
