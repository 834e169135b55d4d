"""Long fuzz run of the decoder entry points: every input must give CodecError or an image.

Seeds are real streams (Kodak crops, several sizes, qualities, grayscale, and the conformance
streams of every other codec); each input is one
mutation from :mod:`codec.fuzzing` (bit flips, truncations, extensions, header-field edits and
section garbage with the CRC re-sealed, section-length edits). Each input goes through
``codec.info`` and ``codec.decompress`` in a worker process under a time bound; any other
exception, a crash of the worker or a timeout counts as a failure and is saved for replay.

    python benchmarks/fuzz_decode.py --inputs 100000 -j 2

Writes ``benchmarks/results/fuzz_decode.json`` (and failing inputs under
``benchmarks/results/fuzz_failures/``).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KODAK = ROOT.parent / "shared" / "data" / "kodak"
TIME_BOUND_S = 20

_seeds: list[bytes] = []


class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # noqa: ANN001
    raise _Timeout()


def _init(seeds: list[bytes]) -> None:
    import torch

    torch.set_num_threads(1)
    _seeds.extend(seeds)
    signal.signal(signal.SIGALRM, _alarm)


def _batch(start: int, count: int, seed: int) -> dict:
    import numpy as np

    import codec
    from codec.fuzzing import mutate

    stats = {"inputs": 0, "codec_error": 0, "image": 0, "failures": [], "kinds": {}}
    for i in range(start, start + count):
        rng = random.Random(seed * 1_000_003 + i)
        what, data = mutate(rng.choice(_seeds), rng)
        kind = what.split("@")[0].split(":")[0].split("[")[0]
        stats["kinds"][kind] = stats["kinds"].get(kind, 0) + 1
        stats["inputs"] += 1
        signal.alarm(TIME_BOUND_S)
        try:
            try:
                codec.info(data)
            except codec.CodecError:
                pass
            out = codec.decompress(data)
            if not (isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.ndim in (3, 4)):
                raise AssertionError(f"decoder returned {type(out)}")
            stats["image"] += 1
        except codec.CodecError:
            stats["codec_error"] += 1
        except _Timeout:
            stats["failures"].append({"index": i, "what": what, "error": f"timeout > {TIME_BOUND_S}s",
                                      "data": data.hex()})
        except Exception as exc:  # noqa: BLE001 - this is what the fuzzer looks for
            stats["failures"].append({"index": i, "what": what, "error": f"{exc.__class__.__name__}: {exc}",
                                      "trace": traceback.format_exc(limit=4), "data": data.hex()})
        finally:
            signal.alarm(0)
    return stats


def make_seeds(which: str = "all") -> list[bytes]:
    """Seed streams: ``hyperprior`` (Kodak crops), ``others`` (the other codecs' conformance
    streams) or ``all``."""
    import numpy as np

    import codec
    from codec.imageio import read_image

    seeds: list[bytes] = []
    if which in ("all", "others"):
        for conf in sorted((ROOT / "bitstreams" / "conformance").glob("v*")):  # every container version
            for name, entry in json.loads((conf / "manifest.json").read_text()).items():
                if entry["codec"] != "hyperprior" and not name.endswith("-set"):  # sets: same decoder, 300x slower
                    seeds.append((conf / entry["stream"]).read_bytes())
    if which == "others":
        return seeds
    a = read_image(KODAK / "kodim03.png")
    b = read_image(KODAK / "kodim19.png")
    seeds += [codec.compress(a[100:148, 200:264], quality=q) for q in (1, 4, 6)]
    seeds.append(codec.compress(b[:17, :29], quality=2))
    seeds.append(codec.compress(b[300:332, 100:140].mean(axis=2).astype(np.uint8), quality=5))
    seeds.append(codec.compress(a[:1, :1], quality=3))
    return seeds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=100_000)
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--seeds", choices=["all", "hyperprior", "others"], default="all",
                    help="which codecs' streams to mutate")
    ap.add_argument("-o", "--output", type=Path, default=None,
                    help="default: benchmarks/results/fuzz_decode.json (fuzz_decode-SEEDS.json for a subset)")
    args = ap.parse_args()
    if args.output is None:
        suffix = "" if args.seeds == "all" else f"-{args.seeds}"
        args.output = ROOT / "benchmarks" / "results" / f"fuzz_decode{suffix}.json"

    from tqdm import tqdm

    seeds = make_seeds(args.seeds)
    total = {"inputs": 0, "codec_error": 0, "image": 0, "failures": [], "kinds": {}}
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs, initializer=_init, initargs=(seeds,)) as pool:
        futures = [pool.submit(_batch, s, min(args.batch, args.inputs - s), args.seed)
                   for s in range(0, args.inputs, args.batch)]
        bar = tqdm(total=args.inputs, unit="input", disable=None)
        for f in futures:
            r = f.result()
            for k in ("inputs", "codec_error", "image"):
                total[k] += r[k]
            total["failures"].extend(r["failures"])
            for k, v in r["kinds"].items():
                total["kinds"][k] = total["kinds"].get(k, 0) + v
            bar.update(r["inputs"])
        bar.close()
    fail_dir = args.output.parent / "fuzz_failures"
    if total["failures"]:
        fail_dir.mkdir(parents=True, exist_ok=True)
        for f in total["failures"]:
            (fail_dir / f"{f['index']}.lcd").write_bytes(bytes.fromhex(f.pop("data")))
    result = {
        "command": f"python benchmarks/fuzz_decode.py --inputs {args.inputs} -j {args.jobs} --seed {args.seed}"
                   f" --seeds {args.seeds}",
        "inputs": total["inputs"], "codec_error": total["codec_error"], "decoded_image": total["image"],
        "failures": len(total["failures"]), "failure_details": total["failures"][:50],
        "mutation_kinds": total["kinds"], "time_bound_s": TIME_BOUND_S, "seconds": round(time.time() - t0, 1),
        "seed_streams": len(seeds),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "failure_details"}, indent=2))
    sys.exit(1 if total["failures"] else 0)


if __name__ == "__main__":
    main()
