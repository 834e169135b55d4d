"""Entropy-coder throughput: lcodec's rANS core against CompressAI's, in the same run.

One tensor of 1x192x48x64 latents with Gaussian means and scales is quantised and coded by
both coders with the same 64-level scale table (0.11 .. 256, log-spaced):

* CompressAI: ``GaussianConditional.compress`` / ``.decompress`` (its table-driven rANS,
  ``RansEncoder.encode_with_indexes`` underneath), given precomputed indexes and means;
* CompressAI's bare rANS (``RansEncoder.encode_with_indexes``) with its Python lists built
  outside the timer, the most favourable way to time it;
* lcodec: ``round(y - mu)`` then ``entropy.encode`` / ``entropy.decode`` with the table ids.

Both sides get the index computation for free (done once outside the timers). Each figure is
the median of several repetitions; sizes are the bytes each coder produced.
Writes ``benchmarks/results/entropy_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "results" / "entropy_bench.json")
    args = ap.parse_args()

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from compressai.entropy_models import GaussianConditional
        from compressai.models.google import get_scale_table

    import entropy

    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    shape = (1, 192, 48, 64)
    scales = np.exp(rng.uniform(np.log(0.11), np.log(40.0), shape)).astype(np.float32)
    means = rng.normal(0, 3, shape).astype(np.float32)
    y = (means + rng.normal(0, 1, shape) * scales).astype(np.float32)
    n = int(np.prod(shape))

    # CompressAI
    table = get_scale_table()
    gc = GaussianConditional(None)
    gc.update_scale_table(table, force=True)
    y_t, mu_t, s_t = (torch.from_numpy(a) for a in (y, means, scales))
    idx_t = gc.build_indexes(s_t)

    # lcodec: the same scale table as integer tables
    scale_edges = table.numpy().astype(np.float32)
    tables = entropy.gaussian_tables(scale_edges.astype(np.float64))
    ids = np.minimum(np.searchsorted(scale_edges, scales, side="left"), len(scale_edges) - 1).astype(np.uint8)
    assert np.array_equal(ids, idx_t.numpy().astype(np.uint8)), "both coders must use the same table per symbol"

    def timed(fn, repeats):
        times, out = [], None
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return out, statistics.median(times)

    ca_strings, ca_enc = timed(lambda: gc.compress(y_t, idx_t, means=mu_t), args.repeats)
    ca_dec_out, ca_dec = timed(lambda: gc.decompress(ca_strings, idx_t, means=mu_t), args.repeats)
    ca_bytes = sum(len(s) for s in ca_strings)
    ca_ok = bool(torch.equal(ca_dec_out, torch.round(y_t - mu_t) + mu_t))

    # CompressAI's rANS alone, with every Python list it needs prepared outside the timer
    from compressai.ans import RansDecoder, RansEncoder

    sym_list = torch.round(y_t - mu_t).int().flatten().tolist()
    idx_list = idx_t.int().flatten().tolist()
    cdf, cdf_len, off = gc.quantized_cdf.tolist(), gc.cdf_length.tolist(), gc.offset.tolist()
    raw_blob, raw_enc = timed(lambda: RansEncoder().encode_with_indexes(sym_list, idx_list, cdf, cdf_len, off),
                              args.repeats)
    raw_out, raw_dec = timed(lambda: RansDecoder().decode_with_indexes(raw_blob, idx_list, cdf, cdf_len, off),
                             args.repeats)
    raw_ok = raw_out == sym_list

    entropy.encode(np.zeros(1, np.int32), np.zeros(1, np.uint8), tables)  # build the cached models once

    def lc_encode():
        return entropy.encode(np.round(y - means).astype(np.int32), ids, tables)

    lc_blob, lc_enc = timed(lc_encode, args.repeats)
    lc_dec_out, lc_dec = timed(lambda: entropy.decode(lc_blob, ids, tables).astype(np.float32) + means,
                               args.repeats)
    lc_ok = bool(np.array_equal(lc_dec_out, np.round(y - means) + means))

    result = {
        "shape": list(shape), "symbols": n, "repeats": args.repeats, "torch_threads": 1,
        "machine": platform.processor() or platform.machine(), "python": platform.python_version(),
        "compressai": {"bytes": ca_bytes, "encode_s": ca_enc, "decode_s": ca_dec,
                       "encode_msym_s": n / ca_enc / 1e6, "decode_msym_s": n / ca_dec / 1e6, "exact": ca_ok},
        "compressai_rans_only": {"bytes": len(raw_blob), "encode_s": raw_enc, "decode_s": raw_dec,
                                 "encode_msym_s": n / raw_enc / 1e6, "decode_msym_s": n / raw_dec / 1e6,
                                 "exact": raw_ok},
        "lcodec": {"bytes": len(lc_blob), "encode_s": lc_enc, "decode_s": lc_dec,
                   "encode_msym_s": n / lc_enc / 1e6, "decode_msym_s": n / lc_dec / 1e6, "exact": lc_ok},
    }
    result["ratio"] = {
        "encode_speed": result["lcodec"]["encode_msym_s"] / result["compressai"]["encode_msym_s"],
        "decode_speed": result["lcodec"]["decode_msym_s"] / result["compressai"]["decode_msym_s"],
        "size": len(lc_blob) / ca_bytes,
        "encode_speed_vs_rans_only": n / lc_enc / (n / raw_enc),
        "decode_speed_vs_rans_only": n / lc_dec / (n / raw_dec),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{n} symbols ({'x'.join(map(str, shape))}), median of {args.repeats}")
    print(f"{'coder':22s} {'bytes':>9s} {'enc Msym/s':>11s} {'dec Msym/s':>11s} exact")
    for name in ("compressai", "compressai_rans_only", "lcodec"):
        r = result[name]
        print(f"{name:22s} {r['bytes']:9d} {r['encode_msym_s']:11.2f} {r['decode_msym_s']:11.2f} {r['exact']}")
    rt = result["ratio"]
    print(f"lcodec/compressai: encode speed x{rt['encode_speed']:.2f}, decode speed x{rt['decode_speed']:.2f}, "
          f"size x{rt['size']:.4f}; against CompressAI's bare rANS: encode x{rt['encode_speed_vs_rans_only']:.2f}, "
          f"decode x{rt['decode_speed_vs_rans_only']:.2f}")


if __name__ == "__main__":
    main()
