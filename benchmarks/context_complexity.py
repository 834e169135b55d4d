"""Parameters and kMAC per pixel of the hyperprior and of the sliced context codecs' sizes
(MLICv2, S2LIC), at Kodak's size.

    python benchmarks/context_complexity.py   # writes benchmarks/results/{mlicv2,s2lic}/complexity.json

Multiply-accumulates are counted by hooks on every convolution, transposed convolution,
linear layer and attention product (codec.context.transforms.count_macs) during one forward
pass of a 768x512 image; GDN, normalisation, activations and softmax are not counted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codec.context.transforms import count_macs  # noqa: E402
from codec.hyperprior.weights import installed_weights, load_model_file  # noqa: E402
from codec.mlicv2 import transforms as mlicv2  # noqa: E402
from codec.mlicv2.weights import FAMILY as MLICV2  # noqa: E402
from codec.s2lic import transforms as s2lic  # noqa: E402
from codec.s2lic.weights import FAMILY as S2LIC  # noqa: E402
from codec.weightfiles import most_trained  # noqa: E402

H, W = 512, 768


@torch.no_grad()
def shipped_rows(families) -> dict[str, dict[str, float]]:
    """The shipped hyperprior, and each family's lite entropy model on its transforms."""
    hp, _ = load_model_file(most_trained(installed_weights()).path)
    x = torch.rand(1, 3, H, W)
    y0 = hp.g_a(x)
    z = hp.h_a(y0)
    hyper = hp.h_s(torch.round(z))
    px = H * W * 1000
    analysis = count_macs(lambda: hp.g_a(x), hp.g_a) + count_macs(lambda: hp.h_a(y0), hp.h_a)
    decode = count_macs(lambda: hp.h_s(torch.round(z)), hp.h_s) + count_macs(lambda: hp.g_s(y0), hp.g_s)
    hp_params = sum(p.numel() for n, p in hp.named_parameters() if not n.startswith("entropy_bottleneck"))
    rows = {"hyperprior (shipped)": {"parameters": hp_params, "kmac_per_pixel": (analysis + decode) / px,
                                     "decode_kmac_per_pixel": decode / px}}
    q = torch.tensor([0])
    ones = torch.ones(1, hp.config.M, 1, 1)
    for family, label in families:
        em = family.float_class(family.config(hp.config.M, hp.config.qualities, hp.config.scale_min)).eval()
        em_macs = count_macs(lambda: em(y0, hyper, ones, ones, q), em)
        em_params = sum(p.numel() for p in em.parameters())
        rows[f"{family.name}-lite (shipped transforms + {label})"] = {
            "parameters": hp_params + em_params, "kmac_per_pixel": (analysis + decode + em_macs) / px,
            "decode_kmac_per_pixel": (decode + em_macs) / px, "entropy_model_parameters": em_params,
            "entropy_model_kmac_per_pixel": em_macs / px}
    return rows


def main() -> None:
    rows = shipped_rows([(MLICV2, "multi-reference entropy model"), (S2LIC, "ACGC entropy model")])
    per_codec = {
        "mlicv2": {k: v for k, v in rows.items() if not k.startswith("s2lic")},
        "s2lic": {k: v for k, v in rows.items() if not k.startswith("mlicv2")},
    }
    per_codec["mlicv2"]["mlicv2-lite, token-mixing transforms (stage 2)"] = mlicv2.complexity(mlicv2.LITE, H, W)
    per_codec["mlicv2"]["mlicv2-paper (N=192, M=320, 10 slices)"] = mlicv2.complexity(mlicv2.PAPER, H, W)
    per_codec["s2lic"]["s2lic-lite, SwinV2 transforms (N=64, M=128, depths 1,1,1,1)"] = \
        s2lic.complexity(s2lic.LITE, H, W)
    per_codec["s2lic"]["s2lic-paper (N=192, M=320, 10 slices, depths 2,4,6,2)"] = s2lic.complexity(s2lic.PAPER, H, W)
    for name, table in per_codec.items():
        out = ROOT / "benchmarks" / "results" / name / "complexity.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"image": f"{W}x{H}", "rows": table}, indent=2) + "\n")
        for label, r in table.items():
            print(f"{label:78s} {r['parameters'] / 1e6:7.2f} M params {r['kmac_per_pixel']:9.1f} kMAC/px "
                  f"(decode {r['decode_kmac_per_pixel']:.1f})")


if __name__ == "__main__":
    main()
