"""How long can a small stream keep each decoder busy? Header forgeries of real streams.

Every conformance stream (v2) is rewritten with other sizes in its header (long thin images,
wide ones, squares up to what the container holds; the sections and the CRC resealed by
``write_container``), and each forgery is decoded in a child process with a time limit.
Reported per codec: the slowest refusal and the slowest successful decode among the forgeries
of at most 1 KiB, and anything that took longer than the limit or ended in an error other than
``CodecError``.

    python benchmarks/decode_work.py                 # writes benchmarks/results/hostile/decode_work.json
    python benchmarks/decode_work.py --limit 120

This is the header half of the structure-aware fuzzing the hostile-input work asks for; the
section-content mutations are ``tests/fuzz/test_fuzz_decode.py``'s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = [(1, 1 << 20), (4, 1 << 20), (32, 131104), (1 << 20, 1), (1 << 20, 4), (4096, 4096), (2048, 2048),
         (16384, 16384), (1, 1), (3, 70000), (70000, 3), (1024, 4096)]


def _decode(real: bytes, data: bytes, out: "mp.Queue[tuple[str, float, str]]") -> None:
    """In a fresh (spawned) process: load the codec by decoding the real stream, then time the
    forgery alone. Forked children of a process that ran torch can deadlock in its thread
    pools, which would read as a decoder that never ends."""
    import codec

    codec.decompress(real)
    t0 = time.perf_counter()
    try:
        codec.decompress(data)
        out.put(("decoded", time.perf_counter() - t0, ""))
    except codec.CodecError as exc:
        out.put(("refused", time.perf_counter() - t0, str(exc)[:120]))
    except BaseException as exc:  # noqa: BLE001 - the contract is broken: report it
        out.put(("broken", time.perf_counter() - t0, f"{exc.__class__.__name__}: {exc}"[:200]))


def run_one(real: bytes, data: bytes, limit: float) -> tuple[str, float, str]:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    p = ctx.Process(target=_decode, args=(real, data, q))
    t0 = time.perf_counter()
    p.start()
    p.join(limit + 30.0)  # the time to start and load the codec is not the forgery's
    if p.is_alive():
        p.kill()
        p.join()
        return "timeout", time.perf_counter() - t0, f"still decoding after {limit:.0f} s"
    if q.empty():
        return "broken", time.perf_counter() - t0, f"child exited with {p.exitcode}"
    what, dt, msg = q.get()
    if dt > limit:
        what, msg = "timeout", f"decoded in {dt:.0f} s, over the {limit:.0f} s limit"
    return what, dt, msg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=float, default=60.0, help="seconds a forgery may decode")
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "results" / "hostile" / "decode_work.json")
    args = ap.parse_args()
    from codec.container import read_container, write_container

    rows = []
    for path in sorted((ROOT / "bitstreams" / "conformance" / "v2").glob("*.lcd")):
        real = path.read_bytes()
        c = read_container(real)
        for w, h in SIZES:
            try:
                data = write_container(replace(c.header, width=w, height=h), c.sections)
            except Exception:  # noqa: BLE001 - sizes the container cannot write are not forgeries
                continue
            what, dt, msg = run_one(real, data, args.limit)
            rows.append({"stream": path.name, "codec": path.name.split("-q")[0].split("-one")[0].split("-set")[0]
                         .split("-target")[0], "bytes": len(data), "size": f"{w}x{h}", "outcome": what,
                         "seconds": round(dt, 3), "message": msg})
            print(f"{path.name:28s} {w}x{h:<8d} {len(data):6d} B {what:8s} {dt:7.2f} s {msg[:60]}", flush=True)
    small = [r for r in rows if r["bytes"] <= 1024]
    summary = {}
    for codec_name in sorted({r["codec"] for r in rows}):
        mine = [r for r in small if r["codec"] == codec_name]
        refused = [r for r in mine if r["outcome"] == "refused"]
        decoded = [r for r in mine if r["outcome"] == "decoded"]
        every = [r for r in rows if r["codec"] == codec_name]
        summary[codec_name] = {
            "forgeries": len(every),
            "slowest_refusal_any_size_s": max((r["seconds"] for r in every if r["outcome"] == "refused"), default=None),
            "slowest_decode_any_size_s": max((r["seconds"] for r in every if r["outcome"] == "decoded"), default=None),
            "forgeries_up_to_1KiB": len(mine),
            "slowest_refusal_s": max((r["seconds"] for r in refused), default=None),
            "slowest_decode_s": max((r["seconds"] for r in decoded), default=None),
            "timeouts_or_broken": [r for r in rows if r["codec"] == codec_name and r["outcome"] in ("timeout", "broken")],
        }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"limit_s": args.limit, "summary": summary, "rows": rows}, indent=2) + "\n")
    for name, s in summary.items():
        print(f"{name:18s} {s['forgeries_up_to_1KiB']:3d} small forgeries; slowest refusal {s['slowest_refusal_s']} s, "
              f"slowest decode {s['slowest_decode_s']} s; {len(s['timeouts_or_broken'])} timeouts/broken")


if __name__ == "__main__":
    main()
