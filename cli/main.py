"""The ``lcodec`` command: a thin click layer over the :mod:`codec` library."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

import click

STREAM_SUFFIX = ".lcd"


class _Fail(click.ClickException):
    """A one-line error and exit status 1."""

    def show(self, file=None) -> None:  # noqa: ANN001
        click.echo(f"lcodec: error: {self.format_message()}", err=True)


def _run(verbose: bool, fn: Callable[[], None]) -> None:
    """Turn every failure into one line on stderr and a non-zero exit."""
    from codec.errors import CodecError

    try:
        fn()
    except CodecError as exc:
        raise _Fail(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("lcodec: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:  # the reader went away (`lcodec info x | head`): nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except click.ClickException:
        raise
    except OSError as exc:
        raise _Fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from None
    except Exception as exc:  # a bug: still one line unless -v asks for the traceback
        if verbose:
            traceback.print_exc()
        raise _Fail(f"internal error: {exc.__class__.__name__}: {exc} (run with -v for details)") from None


def _each_input(inputs: tuple[str, ...], output: str | None, verbose: bool,
                one: Callable[[str, str | None], None]) -> None:
    """Run ``one(input, output)`` for every input. One input: its error ends the command.
    Several: ``output`` (if given) must be a folder; each failure is reported on its own
    line, the other files still go, and the exit status is 1 if any failed."""
    if len(inputs) == 1:
        _run(verbose, lambda: one(inputs[0], output))
        return
    if "-" in inputs:
        raise _Fail("'-' (stdin) works with a single input only")
    if output is not None and not Path(output).is_dir():
        raise _Fail(f"{output}: with several inputs, -o must be an existing folder")
    failed = 0
    for path in inputs:
        try:
            _run(verbose, lambda: one(path, output))
        except _Fail as exc:
            exc.show()
            failed += 1
    if failed:
        click.echo(f"lcodec: {failed} of {len(inputs)} files failed", err=True)
        sys.exit(1)


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    p = Path(path)
    if not p.exists():
        raise _Fail(f"{path}: no such file")
    if p.is_dir():
        raise _Fail(f"{path}: is a directory")
    return p.read_bytes()


def _same_file(a: str, b: str) -> bool:
    if a == "-" or b == "-":
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def write_output(path: str, data: bytes, force: bool) -> None:
    """Write atomically: a temporary file in the target folder, renamed when complete.

    An interrupt or error at any point leaves no partial file behind.
    """
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if target.exists() and not force:
        raise _Fail(f"{path}: already exists (use -f to overwrite)")
    if target.is_dir():
        raise _Fail(f"{path}: is a directory")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise _Fail(f"{folder}: no such directory")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lcodec", prog_name="lcodec")
def main() -> None:
    """lcodec: learned image compression with exact decoding.

    \b
    Examples:
      lcodec compress photo.png -o photo.lcd -q 4
      lcodec decompress photo.lcd -o photo.out.png
      lcodec info photo.lcd
      cat photo.png | lcodec compress - -o - > photo.lcd
    """


@main.command()
@click.argument("inputs", metavar="IN...", nargs=-1, required=True)
@click.option("-o", "--output", metavar="OUT",
              help=f"output stream ('-' for stdout; default IN{STREAM_SUFFIX}); a folder for several inputs")
@click.option("--codec", "codec_name", default="hyperprior", show_default=True, help="codec to use (see `lcodec info --codecs`)")
@click.option("-q", "--quality", type=int, default=None, help="quality level (hyperprior: 1..6, default 3; lossless codecs have none)")
@click.option("-f", "--force", is_flag=True, help="overwrite an existing output")
@click.option("--verify", is_flag=True, help="decode the result again and check it is exact")
@click.option("--preset", type=click.Choice(["fast", "medium", "slow"]), default=None,
              help="overfit: encoder effort (fitting iterations; default fast)")
@click.option("--time-budget", type=float, default=None, metavar="SECONDS",
              help="overfit: stop fitting after this many seconds")
@click.option("--iterations", type=int, default=None, help="overfit: fitting iterations (overrides --preset)")
@click.option("--target-bpp", type=float, default=None,
              help="overfit: search lambda for the largest file at or below this rate (ignores -q)")
@click.option("-v", "--verbose", is_flag=True, help="print size, bits per pixel and timing")
def compress(inputs: tuple[str, ...], output: str | None, codec_name: str, quality: int | None, force: bool,
             verify: bool, preset: str | None, time_budget: float | None, iterations: int | None,
             target_bpp: float | None, verbose: bool) -> None:
    """Compress images (PNG, JPEG, PPM/PGM, TIFF, WebP) to lcodec streams.

    The lossless codecs (pc-mnist, pc-fashion-mnist) also take an idx3 file (MNIST layout,
    optionally .gz) and code the whole set into one stream. Several inputs are coded one
    after another with the model loaded once; a file that fails is reported and skipped.

    \b
    Examples:
      lcodec compress kodim01.png                  # writes kodim01.png.lcd
      lcodec compress kodim01.png -o k.lcd -q 6    # highest quality
      lcodec compress - -o - < in.png > out.lcd    # stdin to stdout
      lcodec compress photo.png --codec overfit --preset medium   # fits a model to this image
      lcodec compress photo.png --codec overfit --target-bpp 0.5
      lcodec compress digit.png --codec pc-mnist   # lossless, 28x28 grayscale
      lcodec compress t10k-images-idx3-ubyte.gz --codec pc-mnist -o test.lcd
      lcodec compress *.png -o streams/            # several files, into a folder
    """
    def go(input: str, output: str | None) -> None:
        import codec

        if output is not None and Path(output).is_dir():
            output = str(Path(output) / (Path(input).name + STREAM_SUFFIX))
        if output is None and input == "-":
            raise _Fail("reading stdin needs -o (use -o - for stdout)")
        out = output if output is not None else input + STREAM_SUFFIX
        if _same_file(input, out):
            raise _Fail("input and output are the same file")
        if out != "-" and Path(out).exists() and not force:
            raise _Fail(f"{out}: already exists (use -f to overwrite)")
        raw = _read_input(input)
        options: dict[str, object] = {"preset": preset, "time_budget": time_budget, "iterations": iterations,
                                      "target_bpp": target_bpp}
        given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v is not None]
        if given and codec_name != "overfit":
            raise _Fail(f"{', '.join(given)}: only for --codec overfit")
        bar = None
        if codec_name == "overfit":
            from tqdm import tqdm

            bar = tqdm(total=1, unit="it", desc="fitting", dynamic_ncols=True, disable=None, file=sys.stderr)

            def progress(done: int, total: int, bpp: float, psnr: float) -> None:
                bar.total = total
                bar.n = done
                bar.set_postfix_str(f"{bpp:.3f} bpp (estimate), {psnr:.2f} dB")
                bar.refresh()

            options["progress"] = progress
        t0 = time.perf_counter()
        try:
            enc = codec.compress_image(raw, codec=codec_name, quality=quality, verify=verify, **options)
        except codec.UnsupportedImageError as exc:  # the library saw bytes: name the file
            from codec.imageio import UNNAMED

            raise _Fail(str(exc).replace(UNNAMED, "stdin" if input == "-" else input, 1)) from None
        finally:
            if bar is not None:
                bar.close()
        dt = time.perf_counter() - t0
        write_output(out, enc.data, force)
        if verbose:
            h = enc.header
            n = f"{enc.images} x " if enc.images > 1 else ""
            click.echo(f"{input} -> {out}: {n}{h.width}x{h.height}x{h.channels}, {len(enc.data)} bytes, "
                       f"{enc.bits_per_pixel:.4f} bpp, quality {h.quality}, {dt:.2f} s"
                       + (", verified" if verify else ""), err=True)

    _each_input(inputs, output, verbose, go)


@main.command()
@click.argument("inputs", metavar="IN...", nargs=-1, required=True)
@click.option("-o", "--output", metavar="OUT",
              help="output image: .png, .ppm or .pgm ('-' for PNG on stdout); .idx/.idx.gz for image sets; "
                   f"a folder for several inputs (each IN{STREAM_SUFFIX} becomes IN)")
@click.option("-f", "--force", is_flag=True, help="overwrite an existing output")
@click.option("--reference", type=click.Path(dir_okay=False), default=None,
              help="original image: print the PSNR of the decoded pixels against it")
@click.option("--max-pixels", type=int, default=None,
              help="decode at most this many pixels (replaces the default pixels-per-byte limit)")
@click.option("-v", "--verbose", is_flag=True, help="print size and timing")
def decompress(inputs: tuple[str, ...], output: str | None, force: bool, reference: str | None,
               max_pixels: int | None, verbose: bool) -> None:
    """Decompress lcodec streams to PNG or PPM/PGM images.

    Without -o, NAME.png.lcd is written to NAME.png. Several inputs are decoded one after
    another; a stream that fails is reported and skipped.

    \b
    Examples:
      lcodec decompress photo.lcd -o photo.png
      lcodec decompress photo.lcd -o photo.ppm -f
      lcodec decompress photo.lcd -o out.png --reference photo.png   # prints PSNR
      lcodec decompress - -o - < photo.lcd > photo.png
      lcodec decompress test.lcd -o test-images.idx.gz     # an image set
      lcodec decompress streams/*.lcd -o decoded/         # several streams, into a folder
    """
    if reference is not None and len(inputs) > 1:
        raise _Fail("--reference works with a single input only")

    def go(input: str, output: str | None) -> None:
        import codec
        from codec.imageio import encode_idx, encode_image_file, is_idx_name, output_suffix

        if output is not None and Path(output).is_dir():
            name = Path(input).name
            if not name.endswith(STREAM_SUFFIX):
                raise _Fail(f"{input}: cannot name the output (no {STREAM_SUFFIX} suffix); decode it alone with -o")
            output = str(Path(output) / name[: -len(STREAM_SUFFIX)])
        if output is None:
            if input == "-" or not input.endswith(STREAM_SUFFIX):
                raise _Fail("give the output with -o")
            out = input[: -len(STREAM_SUFFIX)]
        else:
            out = output
        to_idx = out != "-" and is_idx_name(out)
        suffix = None if to_idx else output_suffix(out)
        if _same_file(input, out):
            raise _Fail("input and output are the same file")
        if out != "-" and Path(out).exists() and not force:
            raise _Fail(f"{out}: already exists (use -f to overwrite)")
        data = _read_input(input)
        t0 = time.perf_counter()
        pixels = codec.decompress(data, max_pixels=max_pixels)
        dt = time.perf_counter() - t0
        if reference is not None:
            from codec.metrics import psnr
            from codec.imageio import read_image

            ref = read_image(reference)
            if ref.shape != pixels.shape:
                raise _Fail(f"{reference}: {ref.shape[1]}x{ref.shape[0]}x{ref.shape[2]} does not match the "
                            f"decoded {pixels.shape[1]}x{pixels.shape[0]}x{pixels.shape[2]}")
        if pixels.ndim == 4 and not to_idx:
            raise _Fail(f"the stream holds a set of {pixels.shape[0]} images: write it as an idx file "
                        "(-o NAME.idx or NAME.idx.gz)")
        if to_idx:
            encoded = encode_idx(pixels if pixels.ndim == 4 else pixels[None], gz=out.lower().endswith(".gz"))
        else:
            encoded = encode_image_file(pixels, suffix)
        write_output(out, encoded, force)
        if verbose:
            h, w, c = pixels.shape[-3:]
            n = f"{pixels.shape[0]} x " if pixels.ndim == 4 else ""
            click.echo(f"{input} -> {out}: {n}{w}x{h}x{c}, {dt:.2f} s", err=True)
        if reference is not None:
            click.echo(f"PSNR {psnr(ref, pixels):.2f} dB against {reference}", err=True)

    _each_input(inputs, output, verbose, go)


@main.command()
@click.argument("input", metavar="FILE", required=False)
@click.option("--codecs", "list_codecs", is_flag=True, help="list the available codecs instead")
@click.option("--json", "as_json", is_flag=True, help="print the header as JSON")
def info(input: str | None, list_codecs: bool, as_json: bool) -> None:
    """Print the header of an lcodec stream (no decoding, no weights needed).

    \b
    Examples:
      lcodec info photo.lcd
      lcodec info --json photo.lcd
      lcodec info --codecs
    """
    def go() -> None:
        import json

        import codec

        if list_codecs:
            for spec in codec.codecs():
                levels = ("no quality levels" if spec.kind == "lossless" else
                          f"qualities {spec.qualities[0]}..{spec.qualities[-1]} (default {spec.default_quality})")
                click.echo(f"{spec.name:17s} id {spec.wire_id:<3d} {spec.kind:8s} {levels:30s} {spec.summary}")
            return
        if input is None:
            raise _Fail("give a FILE (or --codecs)")
        fields = codec.info(_read_input(input))
        if as_json:
            click.echo(json.dumps(fields, indent=2))
            return
        for k, v in fields.items():
            click.echo(f"{k:15s} {v:.4f}" if isinstance(v, float) else f"{k:15s} {v}")

    _run(False, go)


@main.command(name="eval")
@click.argument("images", nargs=-1, required=True)
@click.option("--codec", "codec_args", multiple=True, metavar="NAME[:Q,...]",
              help="lcodec codec and qualities (repeatable; default: every image codec except the fitted "
                   "ones, all qualities); overfit-fast, overfit-medium, overfit-slow name a preset")
@click.option("--baseline", default="jpeg,webp,avif,jxl,jpeg2000,vvc,bpg", show_default=True,
              help="classical codecs to measure in the same run ('none' for none)")
@click.option("-j", "--jobs", type=int, default=1, show_default=True, help="worker processes")
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path("results"), show_default=True, help="folder for JSON, CSV, plots and the cache")
@click.option("--compare", multiple=True, type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="published curve (CompressAI results JSON) to overlay and rate against (repeatable)")
@click.option("--lossless", is_flag=True,
              help="lossless mode: IMAGES are idx3 files (MNIST layout); reports bits per dimension")
@click.option("--limit", type=int, default=None, help="lossless mode: only the first N images of each file")
@click.option("--single-files", type=int, default=100, show_default=True,
              help="lossless mode: also code this many images as single-image files")
@click.option("-v", "--verbose", is_flag=True, help="print a traceback on internal errors")
def evaluate(images: tuple[str, ...], codec_args: tuple[str, ...], baseline: str, jobs: int, out_dir: Path,
             compare: tuple[Path, ...], lossless: bool, limit: int | None, single_files: int,
             verbose: bool) -> None:
    """Rate-distortion evaluation of lcodec and classical codecs on IMAGES.

    IMAGES are files, folders or globs. Every codec is measured in this run on this machine:
    bpp from the real files, PSNR-RGB, PSNR-Y and MS-SSIM from decoded pixels, and encode and
    decode times. Writes one JSON per codec (CompressAI's results format), a per-image CSV,
    RD plots and a BD-rate table. Finished measurements are cached in OUTPUT/cache.jsonl, so an
    interrupted run resumes; without that cache, the rows of OUTPUT/per_image.csv are reused.

    \b
    Examples:
      lcodec eval ../shared/data/kodak -o results/kodak -j 2
      lcodec eval 'photos/*.png' --codec hyperprior:1,3,6 --baseline jpeg,webp
      lcodec eval kodak/ --compare published/vtm.json --compare published/bpg.json
      lcodec eval kodak/ --codec overfit-fast:2,4 --codec hyperprior --baseline jpeg,webp
      lcodec eval --lossless mnist/t10k-images-idx3-ubyte.gz --codec pc-mnist -o results/mnist
    """
    if lossless:
        _run(verbose, lambda: _eval_lossless(images, codec_args, baseline, out_dir, limit, single_files))
        return

    def go() -> None:
        from tqdm import tqdm

        from codec.evaluation.runner import (bd_table, curves, expand_images, format_bd_table, format_means,
                                             load_published,
                                             parse_codec_arg, resolve_adapter, run_eval, write_outputs)
        from codec.registry import codecs as all_codecs

        paths = expand_images(images)
        specs = []
        wanted = [parse_codec_arg(a) for a in codec_args]
        slow = []
        if not wanted:
            wanted = [(c.name, None) for c in all_codecs() if c.kind == "image" and not c.fitted]
            slow = [c.name for c in all_codecs() if c.kind == "image" and c.fitted]
        for name, qs in wanted:
            adapter = resolve_adapter(name)
            specs.append((adapter, qs or list(adapter.settings)))
        if baseline.strip() not in ("", "none"):
            for name in (b.strip() for b in baseline.split(",") if b.strip()):
                from codec.evaluation.adapters import classical_adapters

                table = classical_adapters()
                if name not in table:
                    raise _Fail(f"unknown baseline {name!r} (known: {', '.join(table)})")
                reason = table[name].available()
                if reason:
                    click.echo(f"skipping {name}: {reason}", err=True)
                    continue
                specs.append((table[name], list(table[name].settings)))
        published = [load_published(p) for p in compare]
        if slow:
            click.echo(f"not measured by default (minutes per image): {', '.join(slow)}; "
                       f"name them with --codec", err=True)
        bar = tqdm(total=1, unit="job", desc="eval", dynamic_ncols=True, disable=None)

        def progress(done: int, total: int, what: str) -> None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(what[:40])
            bar.refresh()

        rows = run_eval(paths, specs, out_dir, workers=jobs, progress=progress)
        bar.close()
        measured = curves(rows, {a.name: a.description for a, _ in specs})
        every = dict(measured)
        for p in published:
            every[p["name"]] = p
        tables = {m: bd_table(every, m) for m in ("psnr", "ms-ssim")}
        written = write_outputs(out_dir, rows, every, tables)
        click.echo(f"{len(paths)} images, {len(rows)} measurements; wrote {len(written)} files to {out_dir}")
        click.echo("")
        click.echo(format_means(measured))
        for metric, title in (("psnr", "BD-rate, PSNR-RGB"), ("ms-ssim", "BD-rate, MS-SSIM (dB)")):
            click.echo("")
            click.echo(format_bd_table(tables[metric], title))

    _run(verbose, go)


LOSSLESS_BASELINES = "png,webp,jxl,jpeg2000,xz"


def _eval_lossless(files: tuple[str, ...], codec_args: tuple[str, ...], baseline: str, out_dir: Path,
                   limit: int | None, single_files: int) -> None:
    from tqdm import tqdm

    from codec.evaluation.lossless import format_report, run_lossless_eval
    from codec.registry import codecs as all_codecs, get_codec

    names = list(codec_args) or [c.name for c in all_codecs() if c.kind == "lossless"]
    for name in names:
        if get_codec(name).kind != "lossless":
            raise _Fail(f"{name} is not a lossless codec")
    if baseline == "jpeg,webp,avif,jxl,jpeg2000,vvc,bpg":  # the lossy default: use the lossless set
        baseline = LOSSLESS_BASELINES
    bases = [] if baseline.strip() in ("", "none") else [b.strip() for b in baseline.split(",") if b.strip()]
    for f in files:
        if not Path(f).is_file():
            raise _Fail(f"{f}: no such file")
        bar = tqdm(total=1, unit="img", desc=Path(f).name, dynamic_ncols=True, disable=None)

        def progress(what: str, done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(what)
            bar.refresh()

        report = run_lossless_eval(Path(f), names, bases, out_dir, limit, single_files, progress)
        bar.close()
        click.echo(format_report(report))


@main.command()
@click.option("--data", type=click.Path(path_type=Path, file_okay=False), default=Path("../shared/data/train"),
              show_default=True, help="folder of training images (all the same size)")
@click.option("--run-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("runs/hyperprior"),
              show_default=True, help="checkpoints go here; an existing checkpoint is resumed")
@click.option("--steps", type=int, default=10_000, show_default=True, help="training steps for this run")
@click.option("--time-budget", type=float, default=None, help="stop after this many minutes")
@click.option("--lr", type=float, default=6e-4, show_default=True, help="peak learning rate")
@click.option("--crops", default="64,128,192", show_default=True, metavar="C[,C...]",
              help="training crop sizes, one drawn per batch (batches keep the pixels of 8 crops of 128)")
@click.option("--no-augment", is_flag=True,
              help="plain crops with horizontal flips only: no rotations, rescaling or colour jitter")
@click.option("--lambdas", default=None, metavar="L[,L...]",
              help="extend the starting weights' qualities to these lambdas (its own first, then higher ones)")
@click.option("--from-scratch", is_flag=True, help="start from random weights, not the shipped ones")
@click.option("--export", "export_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="write weights (.safetensors + .json manifest) here when done")
@click.option("--kodak", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="evaluate the exported weights on this folder (bpp and PSNR into the manifest)")
@click.option("--synthesis-width", type=click.IntRange(min=1), default=None,
              help="widen the synthesis transform of the starting weights to this many channels, "
                   "keeping what they compute (not with --from-scratch or a checkpoint)")
@click.option("--threads", type=int, default=None, help="torch threads (default: all cores)")
@click.option("--compile", "compiled", is_flag=True,
              help="compile the training step with torch.compile: a few minutes of compiling first, "
                   "then about 20% more steps an hour on a CPU (needs a C++ compiler)")
def train(data: Path, run_dir: Path, steps: int, time_budget: float | None, lr: float, from_scratch: bool,
          export_path: Path | None, kodak: Path | None, threads: int | None, crops: str, no_augment: bool,
          lambdas: str | None, synthesis_width: int | None, compiled: bool) -> None:
    """Train the hyperprior (all qualities at once), resuming from RUN_DIR.

    Without a checkpoint in --run-dir, training continues from the shipped weights,
    so every run improves on them. One image in ten of --data (chosen by a hash of its
    name) is the validation split and never trained on; evaluate on it with
    `lcodec eval DATA --split val`.

    \b
    Examples:
      lcodec train --time-budget 60 --export runs/new.safetensors --kodak ../shared/data/kodak
      lcodec train --steps 200 --run-dir /tmp/smoke --from-scratch
      lcodec train --time-budget 120 --run-dir runs/wide --synthesis-width 128
      lcodec train --time-budget 120 --threads 2 --compile
      lcodec train --time-budget 600 --synthesis-width 128 \
          --lambdas 0.0018,0.0035,0.0067,0.013,0.025,0.0483,0.0932,0.18
    """
    try:
        crop_sizes = tuple(int(c) for c in crops.split(","))
        new_lambdas = tuple(float(v) for v in lambdas.split(",")) if lambdas else None
    except ValueError:
        raise click.BadParameter("give comma-separated numbers", param_hint="--crops/--lambdas") from None
    if any(c < 64 or c % 64 for c in crop_sizes):
        raise click.BadParameter("crop sizes must be multiples of 64 (the hyper-latent's stride)", param_hint="--crops")
    if new_lambdas and (run_dir / "checkpoint.pt").exists():
        raise click.UsageError(f"--lambdas extends the weights a run starts from; it does not apply when resuming {run_dir}")
    resuming = (run_dir / "checkpoint.pt").exists()
    if synthesis_width and (from_scratch or resuming):
        raise click.UsageError("--synthesis-width widens the weights a run starts from; it does not apply "
                               + ("with --from-scratch" if from_scratch else f"when resuming {run_dir}"))

    def go() -> None:
        from codec.hyperprior.train import TrainOptions, export_checkpoint
        from codec.hyperprior.train import train as run
        from codec.hyperprior.weights import installed_weights

        init = None
        if not from_scratch and not resuming:
            shipped = installed_weights()
            if shipped:
                init = max(shipped, key=lambda w: int(w.manifest.get("steps", 0))).path
        from codec.training.data import Augment

        aug = Augment(crops=crop_sizes) if not no_augment else Augment(
            rotations=False, min_scale=1.0, colour_prob=0.0, crops=crop_sizes)
        opts = TrainOptions(data=data, run_dir=run_dir, steps=steps, lr=lr, init=init, threads=threads,
                            augment=aug, lambdas=new_lambdas,
                            time_budget=time_budget * 60 if time_budget else None,
                            synthesis_width=synthesis_width, compile=compiled)
        ckpt = run(opts, log=lambda s: click.echo(s, err=True))
        if export_path is not None:
            manifest = export_checkpoint(ckpt, export_path, kodak, log=lambda s: click.echo(s, err=True))
            click.echo(f"wrote {export_path} (sha256 {manifest['sha256'][:16]}, {manifest['steps']} steps)", err=True)

    _run(True, go)


if __name__ == "__main__":
    main()
