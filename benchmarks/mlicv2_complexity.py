"""Parameters and kMAC per pixel of the hyperprior and the MLICv2 sizes, at Kodak's size.

    python benchmarks/mlicv2_complexity.py   # writes benchmarks/results/mlicv2/complexity.json

Multiply-accumulates are counted by hooks on every convolution, transposed convolution,
linear layer and attention product (codec.mlicv2.transforms.count_macs) during one forward
pass of a 768x512 image; GDN, activations and softmax are not counted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codec.hyperprior.weights import installed_weights, load_model_file  # noqa: E402
from codec.mlicv2.entropy_model import EntropyModelConfig, MultiReferenceEntropyModel  # noqa: E402
from codec.mlicv2.transforms import LITE, PAPER, complexity, count_macs  # noqa: E402
from codec.weightfiles import most_trained  # noqa: E402

H, W = 512, 768


@torch.no_grad()
def hyperprior_rows() -> dict[str, dict[str, float]]:
    hp, _ = load_model_file(most_trained(installed_weights()).path)
    x = torch.rand(1, 3, H, W)
    y0 = hp.g_a(x)
    z = hp.h_a(y0)
    hyper = hp.h_s(torch.round(z))
    px = H * W * 1000
    analysis = count_macs(lambda: hp.g_a(x), hp.g_a) + count_macs(lambda: hp.h_a(y0), hp.h_a)
    decode = count_macs(lambda: hp.h_s(torch.round(z)), hp.h_s) + count_macs(lambda: hp.g_s(y0), hp.g_s)
    hp_params = sum(p.numel() for n, p in hp.named_parameters() if not n.startswith("entropy_bottleneck"))
    em = MultiReferenceEntropyModel(EntropyModelConfig(M=hp.config.M, qualities=hp.config.qualities)).eval()
    q = torch.tensor([0])
    ones = torch.ones(1, hp.config.M, 1, 1)
    em_macs = count_macs(lambda: em(y0, hyper, ones, ones, q), em)
    em_params = sum(p.numel() for p in em.parameters())
    return {
        "hyperprior (shipped)": {"parameters": hp_params, "kmac_per_pixel": (analysis + decode) / px,
                                 "decode_kmac_per_pixel": decode / px},
        "mlicv2-lite (shipped transforms + multi-reference entropy model)": {
            "parameters": hp_params + em_params, "kmac_per_pixel": (analysis + decode + em_macs) / px,
            "decode_kmac_per_pixel": (decode + em_macs) / px, "entropy_model_parameters": em_params,
            "entropy_model_kmac_per_pixel": em_macs / px},
    }


def main() -> None:
    rows = hyperprior_rows()
    rows["mlicv2-lite, token-mixing transforms (stage 2)"] = complexity(LITE, H, W)
    rows["mlicv2-paper (N=192, M=320, 10 slices)"] = complexity(PAPER, H, W)
    out = ROOT / "benchmarks" / "results" / "mlicv2" / "complexity.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"image": f"{W}x{H}", "rows": rows}, indent=2) + "\n")
    for name, r in rows.items():
        print(f"{name:70s} {r['parameters'] / 1e6:7.2f} M params {r['kmac_per_pixel']:9.1f} kMAC/px "
              f"(decode {r['decode_kmac_per_pixel']:.1f})")


if __name__ == "__main__":
    main()
