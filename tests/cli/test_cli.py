import json
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

LCODEC = [sys.executable, "-m", "cli.main"]


def run(*args, stdin=None):
    return subprocess.run(LCODEC + [str(a) for a in args], input=stdin, capture_output=True,
                          cwd=Path(__file__).resolve().parents[2])


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def one_line_error(r):
    assert r.returncode != 0
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lcodec: error:"), r.stderr.decode()
    assert b"Traceback" not in r.stderr


def test_round_trip_png_and_ppm(tmp_path, sample_path):
    s = tmp_path / "s.lcd"
    r = run("compress", sample_path, "-o", s, "-q", "2", "-v", "--verify")
    assert r.returncode == 0, r.stderr
    assert b"bpp" in r.stderr and b"verified" in r.stderr
    for name in ("out.png", "out.ppm"):
        r = run("decompress", s, "-o", tmp_path / name)
        assert r.returncode == 0, r.stderr
    a = np.asarray(Image.open(tmp_path / "out.png"))
    b = np.asarray(Image.open(tmp_path / "out.ppm"))
    assert a.shape == (256, 256, 3) and np.array_equal(a, b)
    info = run("info", s)
    assert info.returncode == 0 and b"hyperprior" in info.stdout and b"256" in info.stdout


def test_stdin_and_stdout(sample_path):
    r = run("compress", "-", "-o", "-", stdin=sample_path.read_bytes())
    assert r.returncode == 0 and r.stdout[:4] == b"LCDC"
    d = run("decompress", "-", "-o", "-", stdin=r.stdout)
    assert d.returncode == 0 and d.stdout[:8] == b"\x89PNG\r\n\x1a\n"


def test_default_output_name_and_no_overwrite(tmp_path, sample_path):
    src = tmp_path / "p.png"
    src.write_bytes(sample_path.read_bytes())
    assert run("compress", src).returncode == 0
    out = tmp_path / "p.png.lcd"
    before = digest(out)
    one_line_error(run("compress", src, "-q", "5"))
    assert digest(out) == before
    assert run("compress", src, "-q", "5", "-f").returncode == 0
    assert digest(out) != before
    # decompress to p.png would overwrite the input: refused without -f
    one_line_error(run("decompress", out))
    assert digest(src) == hashlib.sha256(sample_path.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", ["missing", "not_image", "truncated", "bitflip", "same_path", "bad_suffix"])
def test_bad_input_one_line_no_output_input_untouched(tmp_path, sample_path, case):
    good = tmp_path / "good.lcd"
    assert run("compress", sample_path, "-o", good, "-q", "1").returncode == 0
    data = good.read_bytes()
    out = tmp_path / "out.png"
    if case == "missing":
        r = run("compress", tmp_path / "nope.png", "-o", tmp_path / "x.lcd")
        assert not (tmp_path / "x.lcd").exists()
    elif case == "not_image":
        p = tmp_path / "t.png"
        p.write_text("hello")
        r = run("compress", p, "-o", tmp_path / "x.lcd")
        assert not (tmp_path / "x.lcd").exists() and p.read_text() == "hello"
    elif case == "truncated":
        p = tmp_path / "t.lcd"
        p.write_bytes(data[: len(data) // 2])
        r = run("decompress", p, "-o", out)
    elif case == "bitflip":
        p = tmp_path / "t.lcd"
        bad = bytearray(data)
        bad[len(bad) // 2] ^= 0x10
        p.write_bytes(bytes(bad))
        before = digest(p)
        r = run("decompress", p, "-o", out)
        assert digest(p) == before
    elif case == "same_path":
        r = run("decompress", good, "-o", good, "-f")
        assert good.read_bytes() == data
    else:
        r = run("decompress", good, "-o", tmp_path / "out.jpg")
    one_line_error(r)
    assert not out.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_help_has_examples():
    for cmd in ("compress", "decompress", "info", "train"):
        r = run(cmd, "--help")
        assert r.returncode == 0 and b"Examples:" in r.stdout


def test_info_lists_codecs():
    r = run("info", "--codecs")
    assert r.returncode == 0 and b"hyperprior" in r.stdout


def test_train_runs_and_resumes(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(data / f"{i}.png")
    run_dir = tmp_path / "run"
    args = ["train", "--data", data, "--run-dir", run_dir, "--from-scratch", "--threads", "1", "--crops", "64"]
    r = run(*args, "--steps", "2")
    assert r.returncode == 0, r.stderr
    assert (run_dir / "checkpoint.pt").exists()
    r = run(*args, "--steps", "4", "--export", tmp_path / "w.safetensors")
    assert r.returncode == 0, r.stderr
    assert b"resuming" in r.stderr and b"finished at step 4" in r.stderr
    assert (tmp_path / "w.json").exists()
    # widening applies to the weights a run starts from, never to a resumed checkpoint
    one_line_error(run(*args, "--steps", "5", "--synthesis-width", "96"))
    one_line_error(run(*args, "--steps", "5", "--lambdas", "0.1,0.2"))


def test_train_widens_the_shipped_synthesis(tmp_path):
    from codec.hyperprior.weights import installed_weights

    shipped = max(installed_weights(), key=lambda w: int(w.manifest.get("steps", 0))).manifest
    width = shipped["config"].get("N_s") or shipped["config"]["N"]
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(data / "0.png")
    out = tmp_path / "w.safetensors"
    r = run("train", "--data", data, "--run-dir", tmp_path / "run", "--threads", "1", "--crops", "64",
            "--steps", "1", "--synthesis-width", str(width + 8), "--export", out)
    assert r.returncode == 0, r.stderr
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["config"]["N_s"] == width + 8
    assert manifest["synthesis_widened_from"] == width
    assert manifest["init_sha256"] == shipped["sha256"]
    assert manifest["steps"] == shipped["steps"] + 1


def test_eval_command_writes_results_and_a_bd_table(tmp_path, kodak_crops):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i, img in enumerate(kodak_crops[:2]):
        Image.fromarray(img).save(imgs / f"{i}.png")
    out = tmp_path / "res"
    published = Path(__file__).resolve().parents[2] / "benchmarks" / "published" / "kodak" / "jpeg.json"
    r = run("eval", imgs, "--codec", "hyperprior:2,5", "--baseline", "jpeg,webp,vvc", "-o", out,
            "--compare", published)
    assert r.returncode == 0, r.stderr
    assert b"skipping vvc" in r.stderr or (out / "vvc.json").exists()
    assert b"BD-rate, PSNR-RGB" in r.stdout and b"hyperprior" in r.stdout
    # not on a terminal: progress as plain lines, ending at the total
    steps = [ln for ln in r.stderr.decode().splitlines() if ln.startswith("eval: ")]
    assert steps and steps[-1].split()[1].split("/")[0] == steps[-1].split()[1].split("/")[1]
    for name in ("hyperprior.json", "jpeg.json", "webp.json", "per_image.csv", "rd_psnr.png", "bd_rate.json"):
        assert (out / name).exists(), name
    lines = (out / "cache.jsonl").read_text().splitlines()
    r2 = run("eval", imgs, "--codec", "hyperprior:2,5", "--baseline", "jpeg,webp", "-o", out)
    assert r2.returncode == 0 and (out / "cache.jsonl").read_text().splitlines() == lines  # all cached


def test_eval_rejects_unknown_names(tmp_path, sample_path):
    one_line_error(run("eval", sample_path, "--baseline", "nope", "-o", tmp_path))
    one_line_error(run("eval", sample_path, "--codec", "nope", "-o", tmp_path))
    one_line_error(run("eval", tmp_path / "missing*.png", "-o", tmp_path))


MNIST_TEST = "mnist/t10k-images-idx3-ubyte.gz"


def test_lossless_digit_and_idx_set_round_trip(tmp_path, shared_data):
    from codec.imageio import decode_idx, encode_idx

    digits = decode_idx(shared_data(MNIST_TEST).read_bytes())[:20]
    Image.fromarray(digits[0]).save(tmp_path / "d.png")
    r = run("compress", tmp_path / "d.png", "--codec", "pc-mnist", "-o", tmp_path / "d.lcd", "-v")
    assert r.returncode == 0, r.stderr
    r = run("decompress", tmp_path / "d.lcd", "-o", tmp_path / "d2.png")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "d2.png")), digits[0])
    (tmp_path / "s.idx.gz").write_bytes(encode_idx(digits, gz=True))
    r = run("compress", tmp_path / "s.idx.gz", "--codec", "pc-mnist", "-o", tmp_path / "s.lcd", "-v")
    assert r.returncode == 0 and b"20 x 28x28x1" in r.stderr, r.stderr
    one_line_error(run("decompress", tmp_path / "s.lcd", "-o", tmp_path / "s.png"))  # a set needs an idx output
    assert not (tmp_path / "s.png").exists()
    r = run("decompress", tmp_path / "s.lcd", "-o", tmp_path / "back.idx")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(decode_idx((tmp_path / "back.idx").read_bytes()), digits)
    one_line_error(run("compress", tmp_path / "d.png", "--codec", "pc-mnist", "-q", "2", "-o", tmp_path / "x.lcd"))
    one_line_error(run("compress", "samples/parrots.png", "--codec", "pc-mnist", "-o", tmp_path / "x.lcd"))
    assert not (tmp_path / "x.lcd").exists()


def test_eval_lossless_reports_bits_per_dimension(tmp_path, shared_data):
    r = run("eval", "--lossless", shared_data(MNIST_TEST), "--codec", "pc-mnist", "--baseline", "png,xz", "--limit", "30",
            "--single-files", "2", "-o", tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "t10k-images-idx3-ubyte.json").read_text())
    names = [row["codec"] for row in report["results"]]
    assert names == ["pc-mnist", "png", "xz"] and report["images"] == 30
    assert all(row["set_exact"] for row in report["results"])
    assert report["results"][0]["set_bpd"] < report["results"][1]["set_bpd"]  # the circuit beats PNG on digits
    assert (tmp_path / "t10k-images-idx3-ubyte.csv").read_text().count("\n") == 31


def test_encoder_options_belong_to_the_overfit_codec(tmp_path, sample_path):
    one_line_error(run("compress", sample_path, "--preset", "slow", "-o", tmp_path / "x.lcd"))
    assert not (tmp_path / "x.lcd").exists()


def test_several_inputs_into_a_folder_and_failures_reported_per_file(tmp_path, sample_path):
    img = Image.open(sample_path).convert("RGB")
    names = []
    for i, box in enumerate([(0, 0, 64, 48), (10, 10, 50, 40)]):
        img.crop(box).save(tmp_path / f"im{i}.png")
        names.append(tmp_path / f"im{i}.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    streams, decoded = tmp_path / "streams", tmp_path / "decoded"
    streams.mkdir()
    decoded.mkdir()
    r = run("compress", names[0], tmp_path / "bad.png", names[1], "-o", streams, "-q", "2")
    assert r.returncode == 1
    err = r.stderr.decode().strip().splitlines()
    assert err == [f"lcodec: error: {tmp_path / 'bad.png'}: not a readable image (PNG, JPEG, PPM/PGM, TIFF or WebP)",
                   "lcodec: 1 of 3 files failed"]
    assert sorted(p.name for p in streams.iterdir()) == ["im0.png.lcd", "im1.png.lcd"]
    r = run("decompress", *sorted(streams.iterdir()), "-o", decoded)
    assert r.returncode == 0, r.stderr
    for n in names:
        a, b = np.asarray(Image.open(decoded / n.name)), np.asarray(Image.open(n))
        assert a.shape == b.shape and np.abs(a.astype(int) - b).mean() < 20
    # several inputs need a folder; stdin is for one input only
    one_line_error(run("compress", *names, "-o", tmp_path / "x.lcd"))
    one_line_error(run("compress", names[0], "-", "-o", streams))


# -- hostile input and odd names --------------------------------------------------------------
def _png_header_only(width: int, height: int, depth: int = 8, colour: int = 0) -> bytes:
    """A PNG with a header and no pixel data: what the CLI refuses must be refused from it."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def _animated_gif() -> bytes:
    import io

    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (0, 200)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


@pytest.mark.parametrize("case,message", [
    ("bomb", "more than 268435456 pixels"),  # 20000x20000 1-bit: Pillow would only warn, then decode
    ("wide", "1048577x1"),  # a size the container cannot hold
    ("rgb16", "more than 8 bits per sample"),  # Pillow would cut it to 8 bits
    ("animated", "animated image (2 frames)"),  # Pillow would read the first frame
])
def test_inputs_a_stream_cannot_carry_are_one_line_refusals(tmp_path, case, message):
    data = {"bomb": lambda: _png_header_only(20000, 20000, 1), "wide": lambda: _png_header_only(1048577, 1),
            "rgb16": lambda: _png_header_only(4, 4, 16, 2), "animated": _animated_gif}[case]()
    src = tmp_path / f"in.{'gif' if case == 'animated' else 'png'}"
    src.write_bytes(data)
    r = run("compress", src, "-o", tmp_path / "x.lcd")
    one_line_error(r)
    assert message in r.stderr.decode() and str(src) in r.stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]


def test_a_stream_ending_in_a_zero_word_is_a_one_line_error_not_an_internal_one(tmp_path):
    import codec
    from codec.container import read_container, write_container

    c = read_container(codec.compress(np.zeros((8, 8, 3), np.uint8), quality=1))
    bad = tmp_path / "bad.lcd"
    bad.write_bytes(write_container(c.header, [*c.sections[:-1], c.sections[-1] + bytes(4)]))
    r = run("decompress", bad, "-o", tmp_path / "out.png")
    one_line_error(r)
    assert b"internal error" not in r.stderr and b"corrupt" in r.stderr
    assert not (tmp_path / "out.png").exists()


def test_long_output_names_and_permissions_of_new_files(tmp_path, sample_path):
    import os
    import stat

    small = tmp_path / "in.png"
    Image.open(sample_path).convert("RGB").crop((0, 0, 16, 16)).save(small)

    def compress(out: Path) -> subprocess.CompletedProcess:
        return subprocess.run(LCODEC + ["compress", str(small), "-o", str(out), "-q", "1"], capture_output=True,
                              cwd=Path(__file__).resolve().parents[2], preexec_fn=lambda: os.umask(0o022))

    longest = tmp_path / ("n" * 248 + ".lcd")  # 252 characters: the temporary name must still fit
    r = compress(longest)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(longest.stat().st_mode) == 0o644  # as any new file under umask 022, not 0600
    too_long = tmp_path / ("m" * 252 + ".lcd")  # 256 characters: no file system takes it
    r = compress(too_long)
    one_line_error(r)
    err = r.stderr.decode()
    assert str(too_long) in err and ".tmp" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([small.name, longest.name])


def test_control_characters_in_names_stay_on_one_line(tmp_path):
    missing = tmp_path / "new\nline.png"
    r = run("compress", missing, "-o", tmp_path / "x.lcd")
    one_line_error(r)
    assert "new\\nline.png" in r.stderr.decode()
    odd = tmp_path / "odd\n\x1b[31m.png"
    odd.write_bytes(b"not an image")
    r = run("compress", odd, "-o", tmp_path / "x.lcd")
    one_line_error(r)
    assert "odd\\n\\x1b[31m.png: not a readable image" in r.stderr.decode()


# -- what users of gzip/zstd and cjxl expect ---------------------------------------------------
def test_decompress_names_its_output_and_never_overwrites(tmp_path, sample_path):
    """``x.lcd`` decodes to ``x.png``; an existing output needs -f; a missing input says so."""
    stream = tmp_path / "k1.lcd"
    assert run("compress", sample_path, "-o", stream, "-q", "1").returncode == 0
    r = run("decompress", stream)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "k1.png").size == Image.open(sample_path).size
    before = digest(tmp_path / "k1.png")
    one_line_error(run("decompress", stream))
    assert digest(tmp_path / "k1.png") == before
    assert run("decompress", stream, "-f").returncode == 0
    for command in ("compress", "decompress"):
        r = run(command, tmp_path / "missing.lcd")
        one_line_error(r)
        assert b"no such file" in r.stderr


def test_stdout_flag_and_no_binary_to_a_terminal(tmp_path, sample_path):
    import os
    import pty

    r = run("compress", sample_path, "-c", "-q", "1")
    assert r.returncode == 0 and r.stdout[:4] == b"LCDC"
    stream = tmp_path / "s.lcd"
    stream.write_bytes(r.stdout)
    d = run("decompress", stream, "-c")
    assert d.returncode == 0 and d.stdout[:8] == b"\x89PNG\r\n\x1a\n"
    one_line_error(run("compress", sample_path, "-c", "-o", tmp_path / "x.lcd"))
    # stdout a terminal: refused, nothing written to it
    leader, follower = pty.openpty()
    try:
        p = subprocess.run(LCODEC + ["decompress", str(stream), "-c"], stdout=follower, stderr=subprocess.PIPE,
                           cwd=Path(__file__).resolve().parents[2])
    finally:
        os.close(follower)
    os.set_blocking(leader, False)
    try:
        written = os.read(leader, 1024)
    except (BlockingIOError, OSError):
        written = b""
    os.close(leader)
    assert p.returncode != 0 and b"terminal" in p.stderr and written == b""


def test_several_inputs_create_the_output_folder(tmp_path, sample_path):
    img = Image.open(sample_path).convert("RGB")
    names = []
    for i in range(2):
        img.crop((i, i, 40 + i, 30 + i)).save(tmp_path / f"im{i}.png")
        names.append(tmp_path / f"im{i}.png")
    out = tmp_path / "new" / "streams"
    r = run("compress", *names, "-o", out, "-q", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["im0.png.lcd", "im1.png.lcd"]
    one_line_error(run("compress", *names, "-o", "-"))


def test_version_names_every_installed_weights_file():
    r = run("--version")
    assert r.returncode == 0
    text = r.stdout.decode()
    assert text.startswith("lcodec ")
    import codec

    for spec in codec.codecs():
        assert f"  {spec.name}: " in text
    assert "sha256" in text


def test_every_time_budget_is_a_duration_in_seconds_or_with_a_unit():
    from cli.main import DURATION

    assert [DURATION.convert(v, None, None) for v in ("90", "90s", "1.5m", "2h", 30)] == [90.0, 90.0, 90.0, 7200.0, 30.0]
    for bad in ("soon", "-5", "5x", "inf"):
        r = run("train", "--time-budget", bad, "--steps", "1")
        assert r.returncode == 2 and b"is not a duration" in r.stderr  # a usage error, before any work
