"""Rate-distortion evaluation: every codec on every image, in one run, resumable.

Each (image, codec, setting) job codes a real file and decodes it; a row records the bytes,
bpp, PSNR-RGB, PSNR-Y (BT.601), MS-SSIM and the encode/decode seconds. Rows are appended
to ``cache.jsonl`` in the output folder as they finish, keyed by (image hash, codec,
setting, codec version or weights hash), so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import glob
import json
import math
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..errors import CodecError
from ..metrics import bd_rate, ms_ssim, ms_ssim_db, psnr
from .adapters import Adapter, classical_adapters, image_hash, lcodec_adapter

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
BT601 = np.array([65.481, 128.553, 24.966]) / 255.0


@dataclass
class Row:
    image: str
    image_hash: str
    codec: str
    setting: float
    version: str
    width: int
    height: int
    bytes: int
    bpp: float
    psnr_rgb: float
    psnr_y: float
    ms_ssim: float
    encode_s: float
    decode_s: float

    @property
    def key(self) -> str:
        return f"{self.image_hash}|{self.codec}|{self.setting:g}|{self.version}"


def psnr_y(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of BT.601 luma (studio range, as in JPEG/MPEG test practice)."""
    if a.shape[2] == 1:
        return psnr(a, b)
    ya = 16.0 + a.astype(np.float64) @ BT601
    yb = 16.0 + b.astype(np.float64) @ BT601
    mse = float(np.mean((ya - yb) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def expand_images(patterns: Iterable[str], split: str = "all") -> list[Path]:
    """Files, folders (their images, sorted) and globs, in the order given, without repeats.

    ``split`` ("train" or "val") keeps only that part of each folder's images (see
    :mod:`codec.training.data`); "all" keeps every image.
    """
    from ..training.data import image_files

    out: list[Path] = []
    for pat in patterns:
        p = Path(pat)
        if p.is_dir():
            found = [q for q in image_files(p, split) if q.suffix.lower() in IMAGE_SUFFIXES]
        elif p.is_file():
            found = [p]
        else:
            found = sorted(Path(q) for q in glob.glob(pat) if Path(q).suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise CodecError(f"{pat}: no images found")
        out.extend(q for q in found if q not in out)
    return out


def parse_codec_arg(arg: str) -> tuple[str, list[float] | None]:
    """``NAME`` or ``NAME:Q1,Q2,...``."""
    name, _, rest = arg.partition(":")
    if not rest:
        return name, None
    try:
        return name, [float(q) for q in rest.split(",") if q]
    except ValueError:
        raise CodecError(f"--codec {arg}: qualities must be numbers, as in NAME:1,3,6") from None


def resolve_adapter(name: str) -> Adapter:
    classical = classical_adapters()
    if name in classical:
        return classical[name]
    return lcodec_adapter(name)


def stream_path(out_dir: Path, codec: str, image: str, setting: float) -> Path:
    """Where the eval keeps a fitted codec's stream (``out_dir/streams/CODEC/IMAGE-SETTING.lcd``)."""
    return Path(out_dir) / "streams" / codec / f"{Path(image).stem}-{setting:g}.lcd"


def _measure(path: str, name: str, setting: float, version: str, out_dir: str) -> dict:
    from ..imageio import read_image

    img = read_image(path)
    adapter = resolve_adapter(name)
    coded = adapter.run(img, setting)
    if coded.decoded.shape != img.shape:
        raise CodecError(f"{name} decoded {path} to shape {coded.decoded.shape}, expected {img.shape}")
    if adapter.fitted:
        dest = stream_path(Path(out_dir), name, path, setting)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".part")
        tmp.write_bytes(coded.data)
        tmp.replace(dest)
    h, w = img.shape[:2]
    try:
        ssim = ms_ssim(img, coded.decoded) if min(h, w) > 160 else float("nan")
    except (ValueError, AssertionError):
        ssim = float("nan")
    row = Row(Path(path).name, image_hash(img), name, float(setting), version, w, h, len(coded.data),
              8.0 * len(coded.data) / (w * h), psnr(img, coded.decoded), psnr_y(img, coded.decoded), ssim,
              coded.encode_s, coded.decode_s)
    return asdict(row)


def _init_worker() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


_ROW_TYPES = {"int": int, "float": float, "str": str}


def _rows_from_csv(path: Path) -> list[Row]:
    """The rows of a results folder's ``per_image.csv`` (as ``write_outputs`` wrote them)."""
    import csv

    types = {f.name: _ROW_TYPES[str(f.type)] for f in fields(Row)}
    out = []
    with open(path, newline="") as f:
        for rec in csv.DictReader(f):
            try:
                out.append(Row(**{k: types[k](rec[k]) for k in types}))
            except (KeyError, ValueError, TypeError):
                continue  # a row this version cannot read is measured again
    return out


def load_cache(out_dir: Path) -> dict[str, Row]:
    """Rows already measured in ``out_dir``, by key.

    ``cache.jsonl`` is the running record. Where it is missing but the folder holds a
    ``per_image.csv`` (a results folder kept under version control, in a fresh checkout), the
    CSV's rows seed a new ``cache.jsonl``, so hours of fitted-codec rows are not measured again.
    """
    cache_path = Path(out_dir) / "cache.jsonl"
    cached: dict[str, Row] = {}
    if cache_path.exists():
        for line in cache_path.read_text().splitlines():
            try:
                r = Row(**json.loads(line))
            except (ValueError, TypeError):
                continue  # a line cut short by an interrupt
            cached[r.key] = r
        return cached
    csv_path = Path(out_dir) / "per_image.csv"
    if csv_path.exists():
        seeded = _rows_from_csv(csv_path)
        if seeded:
            tmp = cache_path.with_suffix(".part")
            tmp.write_text("".join(json.dumps(asdict(r)) + "\n" for r in seeded))
            tmp.replace(cache_path)
        cached = {r.key: r for r in seeded}
    return cached


def run_eval(images: list[Path], jobs_spec: list[tuple[Adapter, list[float]]], out_dir: Path, workers: int = 1,
             progress: Callable[[int, int, str], None] | None = None) -> list[Row]:
    """Measure every (image, codec, setting); cached rows are reused, new ones appended."""
    from ..imageio import read_image

    out_dir.mkdir(parents=True, exist_ok=True)
    cache_path = out_dir / "cache.jsonl"
    cached = load_cache(out_dir)
    hashes = {str(p): image_hash(read_image(p)) for p in images}
    todo, rows = [], []
    for adapter, settings in jobs_spec:
        for s in settings:
            for p in images:
                key = f"{hashes[str(p)]}|{adapter.name}|{float(s):g}|{adapter.version}"
                if key in cached:
                    rows.append(cached[key])
                else:
                    todo.append((str(p), adapter.name, float(s), adapter.version, str(out_dir)))
    total, done = len(rows) + len(todo), len(rows)
    if progress:
        progress(done, total, "cached")
    with open(cache_path, "a") as cache:
        def record(d: dict) -> None:
            nonlocal done
            row = Row(**d)
            rows.append(row)
            cache.write(json.dumps(d) + "\n")
            cache.flush()
            done += 1
            if progress:
                progress(done, total, f"{row.codec} {row.setting:g} {row.image}")

        if workers <= 1:
            for job in todo:
                record(_measure(*job))
        else:
            with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
                futures = [pool.submit(_measure, *job) for job in todo]
                for f in as_completed(futures):
                    record(f.result())
    return rows


def curves(rows: list[Row], descriptions: dict[str, str]) -> dict[str, dict]:
    """Per-codec means over images, in CompressAI's results format and key names (``psnr-rgb``,
    ``ms-ssim-rgb``, so ``python -m compressai.utils.plot -m psnr|ms-ssim`` reads them), plus
    ``psnr-y`` and ``ms-ssim-db``."""
    out = {}
    for name in dict.fromkeys(r.codec for r in rows):
        sel = [r for r in rows if r.codec == name]
        settings = sorted({r.setting for r in sel})
        res: dict[str, list[float]] = {k: [] for k in ("quality", "bpp", "psnr-rgb", "psnr-y",
                                                       "ms-ssim-rgb", "ms-ssim-db", "encoding_time", "decoding_time")}
        for s in settings:
            at = [r for r in sel if r.setting == s]
            ms = float(np.nanmean([r.ms_ssim for r in at])) if any(not math.isnan(r.ms_ssim) for r in at) else float("nan")
            res["quality"].append(s)
            res["bpp"].append(float(np.mean([r.bpp for r in at])))
            res["psnr-rgb"].append(float(np.mean([r.psnr_rgb for r in at])))
            res["psnr-y"].append(float(np.mean([r.psnr_y for r in at])))
            res["ms-ssim-rgb"].append(ms)
            res["ms-ssim-db"].append(ms_ssim_db(ms) if not math.isnan(ms) else float("nan"))
            res["encoding_time"].append(float(np.mean([r.encode_s for r in at])))
            res["decoding_time"].append(float(np.mean([r.decode_s for r in at])))
        out[name] = {"name": name, "description": descriptions.get(name, name), "results": res}
    return out


def _load_coolchic_tsv(path: Path) -> dict:
    """Cool-chic's published per-image table (``seq_name lmbda rate_bpp ... psnr_db ...``):
    the mean rate and PSNR over the images at each lambda, the same averaging as our curves."""
    try:
        lines = [ln.split("\t") for ln in Path(path).read_text().splitlines() if ln.strip()]
        head = lines[0]
        lam, bpp, db = head.index("lmbda"), head.index("rate_bpp"), head.index("psnr_db")
        by_lambda: dict[float, list[tuple[float, float]]] = {}
        for row in lines[1:]:
            by_lambda.setdefault(float(row[lam]), []).append((float(row[bpp]), float(row[db])))
    except (OSError, ValueError, IndexError) as exc:
        raise CodecError(f"{path}: not a Cool-chic results table ({exc.__class__.__name__})") from None
    order = sorted(by_lambda, reverse=True)  # low rate first
    res = {"bpp": [float(np.mean([b for b, _ in by_lambda[k]])) for k in order],
           "psnr-rgb": [float(np.mean([d for _, d in by_lambda[k]])) for k in order]}
    return {"name": f"{Path(path).stem} (published)", "description": "Cool-chic, per-image results averaged",
            "results": res, "source": str(path)}


def load_published(path: Path) -> dict:
    """A CompressAI-format results JSON (MS-SSIM is converted to dB where only one is given),
    or a Cool-chic per-image ``.tsv``."""
    if Path(path).suffix == ".tsv":
        return _load_coolchic_tsv(path)
    try:
        data = json.loads(Path(path).read_text())
        res = dict(data["results"])
        name = str(data.get("name") or Path(path).stem)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CodecError(f"{path}: not a CompressAI-format results JSON ({exc.__class__.__name__})") from None
    ms = res.get("ms-ssim", res.get("ms-ssim-rgb"))
    if ms is not None and "ms-ssim-db" not in res:
        res["ms-ssim-db"] = [ms_ssim_db(v) for v in ms]
    if "ms-ssim-db" not in res and "ms-ssim-db-rgb" in res:
        res["ms-ssim-db"] = res["ms-ssim-db-rgb"]
    if "bpp" not in res:
        raise CodecError(f"{path}: results have no bpp")
    return {"name": f"{name} (published)", "description": data.get("description", ""), "results": res,
            "source": data.get("source", str(path))}


def bd_table(all_curves: dict[str, dict], metric: str) -> dict[str, dict[str, float]]:
    """BD-rate of every curve (rows) against every other (columns), in percent."""
    key = {"psnr": "psnr-rgb", "ms-ssim": "ms-ssim-db"}[metric]
    table: dict[str, dict[str, float]] = {}
    for test, ct in all_curves.items():
        table[test] = {}
        for anchor, ca in all_curves.items():
            rt, ra = ct["results"], ca["results"]
            if test == anchor or key not in rt or key not in ra:
                continue
            pt = [(b, d) for b, d in zip(rt["bpp"], rt[key]) if not math.isnan(d)]
            pa = [(b, d) for b, d in zip(ra["bpp"], ra[key]) if not math.isnan(d)]
            if len(pt) < 2 or len(pa) < 2:
                continue
            table[test][anchor] = bd_rate([b for b, _ in pa], [d for _, d in pa], [b for b, _ in pt],
                                          [d for _, d in pt])
    return table


def format_means(all_curves: dict[str, dict]) -> str:
    """One line per codec and setting: the means over images (what ``curves`` computed)."""
    width = max([len(n) for n in all_curves] + [5])
    lines = [f"{'codec':<{width}s}  {'setting':>7s}  {'bpp':>7s}  {'PSNR':>6s}  {'MS-SSIM':>7s}  {'enc s':>7s}  {'dec s':>6s}"]
    for name, c in all_curves.items():
        r = c["results"]
        for i, q in enumerate(r["quality"]):
            enc, dec = (r[k][i] if k in r else float("nan") for k in ("encoding_time", "decoding_time"))
            ms = r.get("ms-ssim-rgb", r.get("ms-ssim", [float("nan")] * len(r["bpp"])))[i]
            lines.append(f"{name:<{width}s}  {q:>7g}  {r['bpp'][i]:7.4f}  {r['psnr-rgb'][i]:6.2f}  {ms:7.4f}  "
                         f"{enc:7.2f}  {dec:6.2f}".replace("nan", "  -"))
    return "\n".join(lines)


def format_bd_table(table: dict[str, dict[str, float]], title: str) -> str:
    names = list(table)
    if len(names) < 2:
        return f"{title}: needs at least two curves (add --codec, --baseline or --compare)"
    width = max([len(n) for n in names] + [10])
    col = min(max(len(n) for n in names), 18)
    lines = [title, " " * (width + 2) + " ".join(f"{n[:col]:>{col}s}" for n in names)]
    for t in names:
        cells = []
        for a in names:
            v = table[t].get(a)
            cells.append(f"{'':>{col}s}" if t == a else
                         (f"{'n/a':>{col}s}" if v is None or math.isnan(v) else f"{v:+{col - 1}.1f}%"))
        lines.append(f"{t:<{width}s}  " + " ".join(cells))
    lines.append("(row against column: negative means the row needs fewer bits for the same quality)")
    return "\n".join(lines)


def _dataset_name(paths: list[Path], split: str) -> str:
    """The folder the images come from (``kodak``, ``train (val split)``), for titles."""
    folders = sorted({p.parent.name for p in paths})
    name = folders[0] if len(folders) == 1 else ", ".join(folders[:3]) + (" ..." if len(folders) > 3 else "")
    return name if split == "all" else f"{name} ({split} split)"


def protocol(paths: list[Path], adapters: list[Adapter], workers: int, split: str = "all") -> dict:
    """What a reader needs to repeat a run: images, machine, package versions, codec versions."""
    import os
    import platform

    import numpy

    out: dict = {
        "images": [p.name for p in paths], "split": split, "image_count": len(paths),
        "dataset": _dataset_name(paths, split),
        "bpp": "8 * file bytes / (width * height)", "psnr": "PSNR-RGB over 8-bit decoded pixels",
        "ms_ssim": "pytorch_msssim, data_range 255, RGB", "machine": platform.machine(), "cores": os.cpu_count(),
        "python": platform.python_version(), "numpy": numpy.__version__, "workers": workers,
        "codecs": {a.name: {"description": a.description, "version": a.version} for a in adapters},
    }
    for pkg in ("PIL", "torch", "imagecodecs"):
        try:
            out[pkg.lower()] = __import__(pkg).__version__
        except ImportError:
            pass
    return out


def write_outputs(out_dir: Path, rows: list[Row], all_curves: dict[str, dict], tables: dict[str, dict],
                  run_protocol: dict | None = None) -> list[Path]:
    """JSON per codec, per-image CSV, BD-rate JSON, the protocol and the two RD plots."""
    import csv

    written = []
    if run_protocol is not None:
        p = out_dir / "protocol.json"
        p.write_text(json.dumps(run_protocol, indent=2) + "\n")
        written.append(p)
    for name, c in all_curves.items():
        if name.endswith("(published)"):
            continue
        p = out_dir / f"{name}.json"
        p.write_text(json.dumps(c, indent=2) + "\n")
        written.append(p)
    csv_path = out_dir / "per_image.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        fields = list(asdict(rows[0]).keys()) if rows else []
        w.writerow(fields)
        for r in sorted(rows, key=lambda r: (r.codec, r.setting, r.image)):
            w.writerow([getattr(r, k) for k in fields])
    written.append(csv_path)
    bd_path = out_dir / "bd_rate.json"
    bd_path.write_text(json.dumps(tables, indent=2) + "\n")
    written.append(bd_path)
    title = None
    if run_protocol is not None:
        title = f"{run_protocol.get('dataset', '')}, {run_protocol.get('image_count', '?')} images"
    written.extend(plot_curves(out_dir, all_curves, title))
    return written


#: marker shapes cycled with the colours, so no two of up to 60 curves look alike
MARKERS = "os^vD<>pXh*"


def plot_curves(out_dir: Path, all_curves: dict[str, dict], title: str | None = None) -> list[Path]:
    """``rd_psnr.png`` and ``rd_msssim.png``: one curve per codec (published ones dashed),
    each with its own colour and marker, axes fitted to the points, ``title`` on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab20")
    out = []
    for key, label, fname in (("psnr-rgb", "PSNR-RGB (dB)", "rd_psnr.png"),
                              ("ms-ssim-db", "MS-SSIM (dB)", "rd_msssim.png")):
        fig, ax = plt.subplots(figsize=(9, 6.5))
        drawn = 0
        xs: list[float] = []
        for i, (name, c) in enumerate(all_curves.items()):
            r = c["results"]
            if key not in r:
                continue
            pts = sorted((b, d) for b, d in zip(r["bpp"], r[key]) if not math.isnan(d) and not math.isnan(b))
            if not pts:
                continue
            published = name.endswith("(published)")
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "--" if published else "-",
                    color=cmap(i % 20), marker=MARKERS[i % len(MARKERS)], markersize=3.5 if published else 4.5,
                    label=name, linewidth=1.0 if published else 1.5)
            xs.extend(p[0] for p in pts)
            drawn += 1
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        if xs:
            ax.set_xlim(0, max(xs) * 1.03)
        ax.grid(True, alpha=0.3)
        if title:
            ax.set_title(title)
        if drawn:
            ax.legend(fontsize=7, loc="lower right", ncol=2 if drawn > 12 else 1)
        fig.tight_layout()
        path = out_dir / fname
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(path)
    return out
