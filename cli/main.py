"""The ``lcodec`` command: a thin click layer over the :mod:`codec` library."""

from __future__ import annotations

import os
import secrets
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable

import click

STREAM_SUFFIX = ".lcd"


def printable(text: str) -> str:
    """``text`` with control characters (a newline in a file name) and undecodable bytes of
    file names (surrogate escapes) written as escapes, so that it prints as one line."""
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x20 or code == 0x7F:
            out.append(repr(ch)[1:-1] if ch in "\n\r\t" else f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's escape of a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


class _Fail(click.ClickException):
    """A one-line error and exit status 1."""

    def show(self, file=None) -> None:  # noqa: ANN001
        click.echo(f"lcodec: error: {printable(self.format_message())}", err=True)


def _run(verbose: bool, fn: Callable[[], None]) -> None:
    """Turn every failure into one line on stderr and a non-zero exit.

    Warnings of the libraries underneath (Pillow's, numpy's) are not shown unless ``verbose``:
    what matters to the user is already in the result or in the one-line error.
    """
    from codec.errors import CodecError

    try:
        with warnings.catch_warnings():
            if not verbose:
                warnings.simplefilter("ignore")
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


#: names that are files, not folders to create for several outputs
FILE_SUFFIXES = {STREAM_SUFFIX, ".png", ".ppm", ".pgm", ".pnm", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}


def _each_input(inputs: tuple[str, ...], output: str | None, verbose: bool,
                one: Callable[[str, str | None], None]) -> None:
    """Run ``one(input, output)`` for every input. One input: its error ends the command.
    Several: ``output`` (if given) is a folder, created if missing; each failure is reported
    on its own line, the other files still go, and the exit status is 1 if any failed."""
    if len(inputs) == 1:
        _run(verbose, lambda: one(inputs[0], output))
        return
    if "-" in inputs:
        raise _Fail("'-' (stdin) works with a single input only")
    if output == "-":
        raise _Fail("several inputs cannot all go to stdout: give -o a folder")
    if output is not None and not Path(output).is_dir():
        if Path(output).exists() or Path(output).suffix.lower() in FILE_SUFFIXES:
            raise _Fail(f"{output}: with several inputs, -o must be a folder")
        try:
            Path(output).mkdir(parents=True)
        except OSError as exc:
            raise _Fail(f"{output}: cannot create the folder ({exc.strerror or exc})") from None
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


def _check_input(path: str) -> None:
    """Fail early, before any naming of outputs, when ``path`` cannot be read."""
    if path == "-":
        return
    p = Path(path)
    if not p.exists():
        raise _Fail(f"{path}: no such file")
    if p.is_dir():
        raise _Fail(f"{path}: is a directory")


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


#: characters of the output's name that its temporary file's name repeats: with the dot,
#: random part and suffix that name stays far below the usual 255-byte limit on names,
#: whatever the length of the output's own
TEMP_NAME_CHARS = 40


def _create_temporary(folder: Path, name: str) -> tuple[int, Path]:
    """A new file beside the output, opened for writing, with the permissions a new file
    gets (0666 less the umask, as ``open()`` gives): unlike ``tempfile.mkstemp``'s 0600, the
    output keeps them when the file is renamed into place."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = folder / f".{name[:TEMP_NAME_CHARS]}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{folder}: cannot create a temporary file")


def write_output(path: str, data: bytes, force: bool) -> None:
    """Write atomically: a temporary file in the target folder, renamed when complete.

    An interrupt or error at any point leaves no partial file behind; an error names
    ``path``, never the temporary file.
    """
    if path == "-":
        if sys.stdout.isatty():
            raise _Fail("refusing to write binary data to a terminal (redirect stdout or give -o FILE)")
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
    try:
        fd, tmp = _create_temporary(folder, target.name)
    except OSError as exc:
        raise _Fail(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise _Fail(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise


def _versions() -> str:
    """lcodec's version and, per codec, the weights files installed for it (steps, hash)."""
    from importlib import metadata

    try:
        own = metadata.version("lcodec")
    except metadata.PackageNotFoundError:
        own = "(not installed: running from a checkout)"
    lines = [f"lcodec {own}"]
    for spec in _registry().codecs():
        found = spec.installed_weights()
        if found:
            lines.append(f"  {spec.name}: " + ", ".join(
                f"{w.path.name} (" + (f"{w.manifest['steps']} steps, " if "steps" in w.manifest else "")
                + f"sha256 {w.sha256[:16]})" for w in found))
        else:
            lines.append(f"  {spec.name}: no weights (fitted to each image)" if spec.fitted
                         else f"  {spec.name}: no weights installed")
    return "\n".join(lines)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(_versions())
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="print the versions of lcodec and of every installed weights file, and exit")
def main() -> None:
    """lcodec: learned image compression with exact decoding.

    \b
    Examples:
      lcodec compress photo.png -o photo.lcd -q 4
      lcodec decompress photo.lcd -o photo.out.png
      lcodec info photo.lcd
      cat photo.png | lcodec compress - -o - > photo.lcd
    """


def _registry():  # noqa: ANN202 - the registry imports no torch: cheap enough for option building
    from codec import registry

    return registry


def _quality_help() -> str:
    parts = [f"{s.name} {s.qualities[0]}..{s.qualities[-1]} (default {s.default_quality})"
             for s in _registry().codecs() if s.qualities]
    return "quality level: " + ", ".join(parts) + "; lossless codecs have none"


class _Duration(click.ParamType):
    """A time span in seconds: ``90``, ``90s``, ``1.5m``, ``2h`` (every time budget, one unit)."""

    name = "duration"
    UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip().lower()
        scale = self.UNITS.get(text[-1:], None)
        try:
            seconds = float(text[:-1] if scale else text) * (scale or 1.0)
        except ValueError:
            self.fail(f"{value!r} is not a duration (seconds, or with a unit: 90s, 45m, 2h)", param, ctx)
        if not seconds >= 0 or seconds == float("inf"):
            self.fail(f"{value!r} is not a duration (seconds, or with a unit: 90s, 45m, 2h)", param, ctx)
        return seconds


DURATION = _Duration()


def _encoder_options(fn: Callable) -> Callable:
    """One click option per encoder option any registered codec declares."""
    reg = _registry()
    for opt in reversed(list(reg.all_options().values())):
        owners = [s.name for s in reg.codecs() if s.option(opt.name) is not None]
        kind = click.Choice(list(opt.choices)) if opt.choices else DURATION if opt.duration else opt.type
        fn = click.option(opt.flag, opt.name, type=kind, default=None, metavar=opt.metavar,
                          help=f"{', '.join(owners)}: {opt.help}")(fn)
    return fn


def _compress_help() -> str:
    examples = [
        "lcodec compress kodim01.png                  # writes kodim01.png.lcd",
        "lcodec compress - -o - < in.png > out.lcd    # stdin to stdout",
        "lcodec compress *.png -o streams/            # several files, into a folder",
    ]
    for spec in _registry().codecs():
        examples.extend(spec.examples)
    return ("Compress images (PNG, JPEG, PPM/PGM, TIFF, WebP) to lcodec streams.\n\n"
            "Image-set codecs also take an idx3 file (MNIST layout, optionally .gz) and code the "
            "whole set into one stream. Several inputs are coded one after another with the model "
            "loaded once; a file that fails is reported and skipped. `lcodec info --codecs` lists "
            "the codecs, their qualities and options.\n\n\b\nExamples:\n"
            + "\n".join("  " + e for e in examples))


class _PlainProgress:
    """Progress for logs (stderr not a terminal): one line per step of 5%, or per 30 s."""

    def __init__(self, desc: str):
        self.desc = desc
        self.shown = -1
        self.last = time.monotonic()

    def __call__(self, done: int, total: int, what: str) -> None:
        step = 20 * done // max(total, 1)
        now = time.monotonic()
        if step > self.shown or now - self.last > 30 or done == total:
            self.shown, self.last = step, now
            click.echo(f"{self.desc}: {done}/{total} {printable(what)[:60]}", err=True)


def _require_extra(extra: str, modules: tuple[str, ...]) -> None:
    """Fail at once, in one line, when a command needs packages the core install leaves out."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise _Fail(f"this command needs {', '.join(missing)}: pip install 'lcodec[{extra}]'")


def _stdout_output(output: str | None, to_stdout: bool) -> str | None:
    if to_stdout and output not in (None, "-"):
        raise _Fail("-c/--stdout and -o name two outputs: give one")
    return "-" if to_stdout else output


class _LazyBar:
    """A progress bar on stderr that appears only when an encoder reports progress."""

    def __init__(self, desc: str, quiet: bool = False):
        self.desc = desc
        self.quiet = quiet
        self.bar = None

    def __call__(self, done: int, total: int, message: str) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="it", desc=self.desc, dynamic_ncols=True, disable=None,
                            file=sys.stderr)
        self.bar.total = total
        self.bar.n = done
        self.bar.set_postfix_str(message)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@main.command(help=_compress_help())
@click.argument("inputs", metavar="IN...", nargs=-1, required=True)
@click.option("-o", "--output", metavar="OUT",
              help=f"output stream ('-' for stdout; default IN{STREAM_SUFFIX}); a folder for several inputs")
@click.option("--codec", "codec_name", default=_registry().DEFAULT_CODEC, show_default=True,
              help="codec to use (see `lcodec info --codecs`)")
@click.option("-q", "--quality", type=int, default=None, help=_quality_help())
@click.option("-f", "--force", is_flag=True, help="overwrite an existing output")
@click.option("--verify", is_flag=True, help="decode the result again and check it is exact")
@click.option("-c", "--stdout", "to_stdout", is_flag=True, help="write the stream to stdout (as -o -)")
@_encoder_options
@click.option("--quiet", is_flag=True, help="no progress bars")
@click.option("-v", "--verbose", is_flag=True, help="print size, bits per pixel and timing")
def compress(inputs: tuple[str, ...], output: str | None, codec_name: str, quality: int | None, force: bool,
             verify: bool, to_stdout: bool, quiet: bool, verbose: bool, **options: object) -> None:
    output = _stdout_output(output, to_stdout)

    def go(input: str, output: str | None) -> None:
        import codec

        _check_input(input)

        spec = codec.get_codec(codec_name)
        given = [o for o, v in options.items() if v is not None and spec.option(o) is None]
        if given:
            flags = ", ".join("--" + o.replace("_", "-") for o in given)
            raise _Fail(f"{flags}: not an option of --codec {codec_name}")
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
        bar = _LazyBar("encoding", quiet)
        t0 = time.perf_counter()
        try:
            enc = codec.compress_image(raw, codec=codec_name, quality=quality, verify=verify, progress=bar,
                                       **options)
        except codec.UnsupportedImageError as exc:  # the library saw bytes: name the file
            from codec.imageio import UNNAMED

            raise _Fail(str(exc).replace(UNNAMED, "stdin" if input == "-" else input, 1)) from None
        finally:
            bar.close()
        dt = time.perf_counter() - t0
        write_output(out, enc.data, force)
        if verbose:
            h = enc.header
            n = f"{enc.images} x " if enc.images > 1 else ""
            q = f"quality {h.quality}" if h.has_quality else "no quality"
            click.echo(f"{printable(input)} -> {printable(out)}: {n}{h.width}x{h.height}x{h.channels}, "
                       f"{len(enc.data)} bytes, "
                       f"{enc.bits_per_pixel:.4f} bpp, {q}, {dt:.2f} s"
                       + (", verified" if verify else ""), err=True)

    _each_input(inputs, output, verbose, go)


def _decoded_name(stream_name: str) -> str:
    """``x.png.lcd`` -> ``x.png``; ``x.ppm.lcd`` -> ``x.ppm``; ``x.lcd`` (or any other name the
    decoder cannot write) -> ``x.png``."""
    from codec.imageio import PNM_SUFFIXES, is_idx_name

    base = stream_name[: -len(STREAM_SUFFIX)]
    if is_idx_name(base) or Path(base).suffix.lower() in PNM_SUFFIXES | {".png"}:
        return base
    return base + ".png"


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
@click.option("-c", "--stdout", "to_stdout", is_flag=True, help="write the image to stdout as PNG (as -o -)")
@click.option("-v", "--verbose", is_flag=True, help="print size and timing")
def decompress(inputs: tuple[str, ...], output: str | None, force: bool, reference: str | None,
               max_pixels: int | None, to_stdout: bool, verbose: bool) -> None:
    """Decompress lcodec streams to PNG or PPM/PGM images.

    Without -o, NAME.png.lcd is written to NAME.png and NAME.lcd to NAME.png (an existing
    file is never overwritten without -f). Several inputs are decoded one after another; a
    stream that fails is reported and skipped.

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
    output = _stdout_output(output, to_stdout)

    def go(input: str, output: str | None) -> None:
        import codec
        from codec.imageio import encode_idx, encode_image_file, is_idx_name, output_suffix

        _check_input(input)
        if output is not None and Path(output).is_dir():
            name = Path(input).name
            if not name.endswith(STREAM_SUFFIX):
                raise _Fail(f"{input}: cannot name the output (no {STREAM_SUFFIX} suffix); decode it alone with -o")
            output = str(Path(output) / _decoded_name(name))
        if output is None:
            if input == "-" or not input.endswith(STREAM_SUFFIX):
                raise _Fail(f"give the output with -o (only NAME{STREAM_SUFFIX} names its own output)")
            out = str(Path(input).with_name(_decoded_name(Path(input).name)))
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
            click.echo(f"{printable(input)} -> {printable(out)}: {n}{w}x{h}x{c}, {dt:.2f} s", err=True)
        if reference is not None:
            click.echo(f"PSNR {psnr(ref, pixels):.2f} dB against {printable(reference)}", err=True)

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
                levels = (f"qualities {spec.qualities[0]}..{spec.qualities[-1]} (default {spec.default_quality})"
                          if spec.qualities else "no quality levels")
                click.echo(f"{spec.name:17s} id {spec.wire_id:<3d} {spec.kind:8s} {levels:30s} {spec.summary}")
                for opt in spec.options:
                    click.echo(f"{'':17s}    {opt.flag}: {opt.help}")
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


def _eval_help() -> str:
    reg = _registry()
    default = reg.DEFAULT_CODEC
    fitted = next((v for s in reg.codecs(fitted=True) for v in s.variants), None)
    lossless = next((s.name for s in reg.codecs(lossless=True)), None)
    examples = [
        "lcodec eval ../shared/data/kodak -o results/kodak -j 2",
        f"lcodec eval 'photos/*.png' --codec {default}:1,3,6 --baseline jpeg,webp",
        "lcodec eval ../shared/data/train --split val -o results/val   # the held-out split",
        "lcodec eval kodak/ --compare published/vtm.json --compare published/bpg.json",
    ]
    if fitted:
        examples.append(f"lcodec eval kodak/ --codec {fitted}:2,4 --codec {default} --baseline jpeg,webp")
    if lossless:
        examples.append(f"lcodec eval --lossless mnist/t10k-images-idx3-ubyte.gz --codec {lossless} -o results/mnist")
    return ("Rate-distortion evaluation of lcodec and classical codecs on IMAGES.\n\n"
            "IMAGES are files, folders or globs. Every codec is measured in this run on this machine: "
            "bpp from the real files, PSNR-RGB, PSNR-Y and MS-SSIM from decoded pixels, and encode and "
            "decode times. Writes one JSON per codec (CompressAI's results format), a per-image CSV, "
            "RD plots and a BD-rate table. Finished measurements are cached in OUTPUT/cache.jsonl, so an "
            "interrupted run resumes; without that cache, the rows of OUTPUT/per_image.csv are reused."
            "\n\n\b\nExamples:\n" + "\n".join("  " + e for e in examples))


@main.command(name="eval", help=_eval_help())
@click.argument("images", nargs=-1, required=True)
@click.option("--codec", "codec_args", multiple=True, metavar="NAME[:Q,...]",
              help="lcodec codec and qualities (repeatable; default: every image codec except the fitted "
                   "ones, all qualities); a codec's variants are named as codecs: "
                   + ", ".join(v for s in _registry().codecs() for v in s.variants))
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
@click.option("--split", type=click.Choice(["all", "train", "val"]), default="all", show_default=True,
              help="of each folder, only the training or the validation split (one image in ten, chosen "
                   "by a hash of its name; training never sees the validation split)")
@click.option("-v", "--verbose", is_flag=True, help="print a traceback on internal errors")
def evaluate(images: tuple[str, ...], codec_args: tuple[str, ...], baseline: str, jobs: int, out_dir: Path,
             compare: tuple[Path, ...], lossless: bool, limit: int | None, single_files: int,
             split: str, verbose: bool) -> None:
    _require_extra("eval", ("imagecodecs", "pytorch_msssim", "scipy", "matplotlib"))
    if lossless:
        _run(verbose, lambda: _eval_lossless(images, codec_args, baseline, out_dir, limit, single_files))
        return

    def go() -> None:
        from tqdm import tqdm

        from codec.evaluation.runner import (bd_table, curves, expand_images, format_bd_table, format_means,
                                             load_published, parse_codec_arg, protocol, resolve_adapter, run_eval,
                                             write_outputs)
        from codec.registry import codecs as all_codecs

        paths = expand_images(images, split)
        specs = []
        wanted = [parse_codec_arg(a) for a in codec_args]
        slow = []
        if not wanted:
            wanted = [(c.name, None) for c in all_codecs(lossless=False, video=False, fitted=False)]
            slow = [c.name for c in all_codecs(lossless=False, video=False, fitted=True)]
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
        plain = _PlainProgress("eval") if bar.disable else None

        def progress(done: int, total: int, what: str) -> None:
            if plain is not None:
                plain(done, total, what)
                return
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
        written = write_outputs(out_dir, rows, every, tables, protocol(paths, [a for a, _ in specs], jobs, split))
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

    names = list(codec_args) or [c.name for c in all_codecs(lossless=True)]
    for name in names:
        if not get_codec(name).lossless:
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


def _train_options(fn: Callable) -> Callable:
    """One click option per training option any trainable codec declares."""
    reg = _registry()
    seen: dict[str, list[str]] = {}
    for spec in reg.codecs():
        for opt in spec.train_options:
            seen.setdefault(opt.name, []).append(spec.name)
    for spec in reversed(reg.codecs()):
        for opt in reversed(spec.train_options):
            if opt.name not in seen:
                continue
            owners = seen.pop(opt.name)
            kind = click.Choice(list(opt.choices)) if opt.choices else opt.type
            fn = click.option(opt.flag, opt.name, type=kind, default=None, metavar=opt.metavar,
                              help=f"{', '.join(owners)}: {opt.help}")(fn)
    return fn


def _train_help() -> str:
    reg = _registry()
    trainable = [s.name for s in reg.codecs() if s.trainer]
    lines = [f"lcodec train --codec {n} --time-budget 1h --export runs/new.safetensors --evaluate ../shared/data/kodak"
             for n in trainable[:1]]
    for spec in reg.codecs():
        lines.extend(spec.train_examples)
    return ("Train a codec's weights, resuming from --run-dir when it holds a checkpoint.\n\n"
            "Without a checkpoint, training continues from the codec's most trained shipped weights "
            "(unless --from-scratch), so every run improves on them. One image in ten of --data "
            "(chosen by a hash of its name) is the validation split and is never trained on; "
            "evaluate on it with `lcodec eval DATA --split val`. Trainable codecs: "
            + (", ".join(trainable) or "none") + ".\n\n\b\nExamples:\n" + "\n".join("  " + e for e in lines))


@main.command(help=_train_help())
@click.option("--codec", "codec_name", default=_registry().DEFAULT_CODEC, show_default=True,
              help="codec to train")
@click.option("--data", type=click.Path(path_type=Path, file_okay=False), default=Path("../shared/data/train"),
              show_default=True, help="folder of training images (all the same size)")
@click.option("--run-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="checkpoints go here; an existing checkpoint is resumed [default: runs/CODEC]")
@click.option("--steps", type=int, default=10_000, show_default=True, help="training steps for this run")
@click.option("--time-budget", type=DURATION, default=None, metavar="DURATION",
              help="stop after this long: seconds, or with a unit (90s, 45m, 2h)")
@click.option("--lr", type=float, default=6e-4, show_default=True, help="peak learning rate")
@click.option("--crops", default="64,128,192", show_default=True, metavar="C[,C...]",
              help="training crop sizes, one drawn per batch (batches keep the pixels of 8 crops of 128)")
@click.option("--no-augment", is_flag=True,
              help="plain crops with horizontal flips only: no rotations, rescaling or colour jitter")
@click.option("--from-scratch", is_flag=True, help="start from random weights, not the shipped ones")
@click.option("--export", "export_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="write weights (.safetensors + .json manifest) here when done")
@click.option("--evaluate", "--kodak", "evaluate_on", type=click.Path(path_type=Path, file_okay=False),
              default=None, help="evaluate the exported weights on this folder (bpp and PSNR into the manifest)")
@_train_options
@click.option("--threads", type=int, default=None, help="torch threads (default: all cores)")
@click.option("--compile", "compiled", is_flag=True,
              help="compile the training step with torch.compile: a few minutes of compiling first, "
                   "then about 20% more steps an hour on a CPU (needs a C++ compiler)")
def train(codec_name: str, data: Path, run_dir: Path | None, steps: int, time_budget: float | None, lr: float,
          crops: str, no_augment: bool, from_scratch: bool, export_path: Path | None, evaluate_on: Path | None,
          threads: int | None, compiled: bool, **options: object) -> None:
    try:
        crop_sizes = tuple(int(c) for c in crops.split(","))
    except ValueError:
        raise click.BadParameter("give comma-separated numbers", param_hint="--crops") from None

    _require_extra("train", ("compressai",))

    def go() -> None:
        import codec
        from codec.interfaces import TrainRequest
        from codec.training.data import Augment

        spec = codec.get_codec(codec_name)
        if not spec.trainer:
            raise _Fail(f"{codec_name} has no training (trainable: "
                        f"{', '.join(s.name for s in codec.codecs() if s.trainer) or 'none'})")
        given = {k: v for k, v in options.items() if v is not None}
        foreign = [k for k in given if k not in {o.name for o in spec.train_options}]
        if foreign:
            raise _Fail(f"{', '.join('--' + k.replace('_', '-') for k in foreign)}: not a training option "
                        f"of {codec_name}")
        aug = Augment(crops=crop_sizes) if not no_augment else Augment(
            rotations=False, min_scale=1.0, colour_prob=0.0, crops=crop_sizes)
        request = TrainRequest(data=data, run_dir=run_dir or Path("runs") / codec_name, steps=steps,
                               time_budget=time_budget, lr=lr,
                               from_scratch=from_scratch, augment=aug, threads=threads, compile=compiled,
                               export=export_path, evaluate_on=evaluate_on)
        module, attr = spec.trainer.split(":")
        import importlib

        getattr(importlib.import_module(module), attr)(request, log=lambda s: click.echo(s, err=True), **given)

    _run(True, go)


if __name__ == "__main__":
    main()
