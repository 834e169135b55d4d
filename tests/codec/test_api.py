import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import codec


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_paths_bytes_and_arrays_agree(sample_path):
    arr = np.asarray(Image.open(sample_path).convert("RGB"))
    a = codec.compress(sample_path, quality=2)
    assert a == codec.compress(str(sample_path), quality=2)
    assert a == codec.compress(sample_path.read_bytes(), quality=2)
    assert a == codec.compress(arr, quality=2)
    assert a == codec.compress(Image.open(sample_path), quality=2)  # a PIL image
    with open(sample_path, "rb") as f:  # a binary file object
        assert a == codec.compress(f, quality=2)
    assert a == codec.compress(io.BytesIO(sample_path.read_bytes()), quality=2)


def test_decompress_takes_bytes_paths_and_file_objects(tmp_path, sample_path):
    data = codec.compress(sample_path, quality=1)
    path = tmp_path / "s.lcd"
    path.write_bytes(data)
    ref = codec.decompress(data)
    for source in (bytearray(data), memoryview(data), path, str(path), io.BytesIO(data)):
        assert np.array_equal(codec.decompress(source), ref)
    with open(path, "rb") as f:
        assert np.array_equal(codec.decompress(f), ref)
    with pytest.raises(codec.CodecError, match="no-such.lcd: cannot read"):
        codec.decompress(tmp_path / "no-such.lcd")
    with open(path) as text:  # text mode: a one-line error, not a TypeError
        with pytest.raises(codec.CodecError, match="binary"):
            codec.decompress(text)


@pytest.mark.parametrize("fmt", ["JPEG", "PPM", "TIFF", "WEBP", "PNG"])
def test_input_formats(tmp_path, fmt):
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    p = tmp_path / f"x.{fmt.lower()}"
    img.save(p, format=fmt)
    assert codec.decompress(codec.compress(p)).shape == (20, 30, 3)


def test_pgm_is_grayscale(tmp_path):
    p = tmp_path / "g.pgm"
    Image.fromarray(np.zeros((9, 11), np.uint8)).save(p)
    assert codec.decompress(codec.compress(p)).shape == (9, 11, 1)


def test_opaque_alpha_is_dropped_and_transparency_refused():
    rgba = np.full((8, 8, 4), 255, np.uint8)
    assert codec.decompress(codec.compress(_png(Image.fromarray(rgba)))).shape == (8, 8, 3)
    rgba[0, 0, 3] = 10
    with pytest.raises(codec.UnsupportedImageError, match="transparency"):
        codec.compress(_png(Image.fromarray(rgba)))


@pytest.mark.parametrize("bad", [
    b"not an image at all",
    np.zeros((4, 4), np.float32),
    np.zeros((4, 4, 2), np.uint8),
    np.zeros((0, 4, 3), np.uint8),
    42,
])
def test_bad_images_raise_codec_error(bad):
    with pytest.raises(codec.CodecError):
        codec.compress(bad)


def test_sixteen_bit_is_refused():
    img = Image.fromarray(np.zeros((4, 4), np.uint16))
    with pytest.raises(codec.UnsupportedImageError, match="8 bits"):
        codec.compress(_png(img))


def test_bad_codec_and_quality():
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(codec.CodecError, match="unknown codec"):
        codec.compress(img, codec="nope")
    with pytest.raises(codec.CodecError, match="quality"):
        codec.compress(img, quality=99)


def test_corrupt_streams_raise_codec_error(sample_path):
    data = codec.compress(sample_path, quality=1)
    rng = np.random.default_rng(0)
    for _ in range(30):
        bad = bytearray(data)
        bad[int(rng.integers(len(bad)))] ^= 1 << int(rng.integers(8))
        with pytest.raises(codec.CodecError):
            codec.decompress(bytes(bad))
    for cut in (0, 3, 20, len(data) // 2, len(data) - 1):
        with pytest.raises(codec.CodecError):
            codec.decompress(data[:cut])
    with pytest.raises(codec.CodecError):
        codec.decompress("a string")


def test_info_reads_the_header_only(sample_path):
    data = codec.compress(sample_path, quality=5)
    meta = codec.info(data)
    assert meta["codec"] == "hyperprior" and meta["quality"] == 5
    assert (meta["width"], meta["height"], meta["channels"]) == (256, 256, 3)
    assert meta["crc"] == "ok"


def test_importing_codec_does_not_import_torch():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import codec, sys; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tiny_stream_declaring_a_huge_image_is_refused_before_decoding():
    import time

    from codec.container import read_container, write_container
    from codec.hyperprior.coding import TileGrid

    small = codec.compress(np.zeros((8, 8, 3), np.uint8), quality=1)
    c = read_container(small)
    w = h = 16384  # 2^28 pixels: 256 tiles, each given the bytes of the real tile stream
    grid = TileGrid.for_image(w, h)
    hostile = write_container(
        type(c.header)(**{**c.header.__dict__, "width": w, "height": h}),
        [c.sections[0], c.sections[1]] + [c.sections[2]] * (grid.rows * grid.cols))
    assert len(hostile) < (1 << 28) // 4096  # the decoder allows 4096 pixels per byte
    t0 = time.perf_counter()
    with pytest.raises(codec.CorruptStreamError, match="pixels in only"):
        codec.decompress(hostile)
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(codec.CodecError, match="more than the limit"):
        codec.decompress(hostile, max_pixels=1 << 20)


def test_max_pixels_lets_a_legitimate_stream_through_or_stops_it():
    data = codec.compress(np.zeros((40, 50, 3), np.uint8), quality=1)
    assert codec.decompress(data, max_pixels=2000).shape == (40, 50, 3)
    with pytest.raises(codec.CodecError, match="limit of 1999"):
        codec.decompress(data, max_pixels=1999)


# -- hostile input: one error type, the format's limits, no silent loss ---------------------
def _sealed_with_zero_word(data: bytes, section: int) -> bytes:
    """``data`` with a zero 32-bit word appended to one section, lengths and CRC made right."""
    from codec.container import read_container, write_container

    c = read_container(data)
    sections = list(c.sections)
    sections[section] += b"\0" * 4
    return write_container(c.header, sections)


@pytest.mark.parametrize("name", ["hyperprior", "overfit", "pc-mnist"])
def test_sections_ending_in_a_zero_word_raise_codec_error(name):
    rng = np.random.default_rng(3)
    if name == "pc-mnist":
        data = codec.compress(rng.integers(0, 256, (28, 28), dtype=np.uint8), codec=name)
    else:
        options = {"iterations": 1} if name == "overfit" else {}
        data = codec.compress(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), codec=name, quality=1, **options)
    for i in range(len(codec.info(data)["sections"])):
        with pytest.raises(codec.CodecError):
            codec.decompress(_sealed_with_zero_word(data, i))


def test_numpy_integers_are_qualities_and_option_values_booleans_and_floats_are_not():
    img = np.full((8, 8, 3), 90, np.uint8)
    assert codec.compress(img, quality=np.int64(2)) == codec.compress(img, quality=2)
    assert codec.compress(img, quality=np.uint8(2)) == codec.compress(img, quality=2)
    for bad in (True, np.bool_(True), 2.0, 2.5, "2"):
        with pytest.raises(codec.CodecError, match="quality must be an integer"):
            codec.compress(img, quality=bad)
    with pytest.raises(codec.CodecError, match="no quality levels"):
        codec.compress(np.zeros((28, 28), np.uint8), codec="pc-mnist", quality=np.int64(2))
    with pytest.raises(codec.CodecError, match="quality must be an integer"):
        codec.compress(np.zeros((28, 28), np.uint8), codec="pc-mnist", quality=False)


def test_option_values_are_checked_like_the_quality():
    from codec.registry import get_codec

    spec = get_codec("overfit")
    iterations, budget = spec.option("iterations"), spec.option("time_budget")
    assert iterations is not None and budget is not None
    assert iterations.check(np.int32(5)) == 5 and type(iterations.check(np.int32(5))) is int
    assert budget.check(np.float32(1.5)) == 1.5 and type(budget.check(np.float32(1.5))) is float
    assert budget.check(np.int64(2)) == 2.0
    for bad in (True, np.bool_(False), 1.5, 2.0, np.float64(3.0), "3"):
        with pytest.raises(ValueError, match="iterations must be an integer"):
            iterations.check(bad)
    with pytest.raises(ValueError, match="time_budget must be a number"):
        budget.check(True)
    img = np.zeros((8, 8, 3), np.uint8)
    for bad in (1.5, True):
        with pytest.raises(codec.CodecError, match="iterations"):
            codec.compress(img, codec="overfit", iterations=bad)


@pytest.mark.parametrize("bad", [None, 5, ["LCDC"], np.zeros(8, np.uint8)])
def test_info_and_decompress_refuse_what_is_not_a_stream(bad):
    for fn in (codec.info, codec.decompress):
        with pytest.raises(codec.CodecError, match="expected the bytes of a stream"):
            fn(bad)


def test_max_pixels_is_an_integer():
    data = codec.compress(np.zeros((4, 4, 3), np.uint8), quality=1)
    assert codec.decompress(data, max_pixels=np.int64(16)).shape == (4, 4, 3)
    for bad in (True, 16.0, -1, "16"):
        with pytest.raises(codec.CodecError, match="max_pixels"):
            codec.decompress(data, max_pixels=bad)


@pytest.mark.parametrize("shape", [(1, (1 << 20) + 1), ((1 << 20) + 1, 1, 3)])
def test_sizes_a_stream_cannot_hold_are_refused_before_encoding(shape):
    with pytest.raises(codec.UnsupportedImageError, match="at most 1048576 pixels on a side"):
        codec.compress(np.zeros(shape, np.uint8), quality=1)


def test_an_image_set_a_stream_cannot_hold_is_refused_before_encoding():
    with pytest.raises(codec.UnsupportedImageError, match="images"):
        codec.compress_image_set(np.zeros(((1 << 20) + 1, 1, 1), np.uint8), codec="pc-mnist")


def _png_chunks(width: int, height: int, depth: int, colour: int, rows: bytes | None) -> bytes:
    """A PNG written by hand (Pillow writes neither 16-bit RGB nor huge headers cheaply);
    ``rows`` None leaves out the pixel data: refusals must come from the header alone."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(rows) if rows is not None else b""
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_files_too_large_for_a_stream_are_refused_from_their_header(recwarn):
    # 20000x20000 1-bit: Pillow only warns (4e8 pixels is under twice its limit) and would decode
    bomb = _png_chunks(20000, 20000, 1, 0, None)
    with pytest.raises(codec.UnsupportedImageError, match="more than 268435456 pixels"):
        codec.compress(bomb)
    with pytest.raises(codec.UnsupportedImageError, match="more than 268435456 pixels"):
        codec.compress(_png_chunks(40000, 40000, 1, 0, None))  # Pillow's own error
    with pytest.raises(codec.UnsupportedImageError, match="1048577x1"):
        codec.compress(_png_chunks((1 << 20) + 1, 1, 8, 0, None))
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]


def test_a_wide_file_is_refused_not_written():
    wide = _png_chunks((1 << 20) + 1, 1, 8, 0, bytes((1 << 20) + 2))
    with pytest.raises(codec.UnsupportedImageError, match="1048577x1"):
        codec.compress(wide)


def _tiff_rgb16(width: int, height: int) -> bytes:
    """An uncompressed 16-bit RGB TIFF (which Pillow opens as 8-bit RGB)."""
    import struct

    entries = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, 3, 0), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 4, 1, 0), (277, 3, 1, 3), (278, 3, 1, height), (279, 4, 1, width * height * 6),
               (284, 3, 1, 1)]
    bits_at = 8 + 2 + 12 * len(entries) + 4
    data_at = bits_at + 6
    out = b"II*\0" + struct.pack("<IH", 8, len(entries))
    for tag, kind, count, value in entries:
        value = {258: bits_at, 273: data_at}.get(tag, value)
        out += struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == 3 and count == 1 else \
            struct.pack("<HHII", tag, kind, count, value)
    return out + struct.pack("<I", 0) + struct.pack("<3H", 16, 16, 16) + bytes(width * height * 6)


@pytest.mark.parametrize("name", ["png-rgb16", "png-rgba16", "png-gray16", "ppm-rgb16", "pgm16", "tiff-rgb16"])
def test_sixteen_bit_files_are_refused_not_cut_to_eight_bits(name):
    data = {
        "png-rgb16": lambda: _png_chunks(2, 2, 16, 2, (b"\0" + bytes(12)) * 2),
        "png-rgba16": lambda: _png_chunks(2, 2, 16, 6, (b"\0" + b"\xff" * 16) * 2),
        "png-gray16": lambda: _png_chunks(2, 2, 16, 0, (b"\0" + bytes(4)) * 2),
        "ppm-rgb16": lambda: b"P6\n2 2\n65535\n" + bytes(24),
        "pgm16": lambda: b"P5\n2 2\n1023\n" + bytes(8),
        "tiff-rgb16": lambda: _tiff_rgb16(3, 2),
    }[name]()
    with pytest.raises(codec.UnsupportedImageError, match="more than 8 bits per sample"):
        codec.compress(data)


def test_files_of_at_most_eight_bits_per_sample_still_code():
    import struct

    assert codec.decompress(codec.compress(b"P6\n2 2\n100\n" + bytes(12), quality=1)).shape == (2, 2, 3)
    assert codec.decompress(codec.compress(_png_chunks(4, 1, 2, 0, b"\0\x1b"), quality=1)).shape == (1, 4, 1)
    # a 16-bit BMP is 5-6-5 RGB (Pillow's raw mode BGR;16): fewer bits, not more
    pixels = struct.pack("<4H", 0xF800, 0x07E0, 0x001F, 0xFFFF) * 2
    info = struct.pack("<IiiHHIIiiII3I", 40, 4, 2, 1, 16, 3, len(pixels), 2835, 2835, 0, 0, 0xF800, 0x07E0, 0x001F)
    bmp = b"BM" + struct.pack("<IHHI", 14 + len(info) + len(pixels), 0, 0, 14 + len(info)) + info + pixels
    assert codec.decompress(codec.compress(bmp, quality=1)).shape == (2, 4, 3)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animated_files_are_refused_not_cut_to_their_first_frame(fmt):
    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (0, 200)]
    buf = io.BytesIO()
    frames[0].save(buf, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(codec.UnsupportedImageError, match="animated image \\(2 frames\\)"):
        codec.compress(buf.getvalue())
    still = io.BytesIO()
    frames[1].save(still, format=fmt)
    assert codec.decompress(codec.compress(still.getvalue(), quality=1)).shape == (8, 8, 3)


def test_exif_orientation_is_applied_and_colour_profiles_are_read():
    """A phone's sideways-stored JPEG codes as displayed; an sRGB profile changes nothing; a
    profile that cannot be read is refused, not ignored."""
    from PIL import ImageCms

    yy, xx = np.mgrid[0:24, 0:40]
    arr = np.stack([xx * 6, yy * 10, np.full_like(xx, 128)], axis=2).astype(np.uint8)  # 24x40 gradients
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG", exif=exif.tobytes())
    out = codec.decompress(codec.compress(buf.getvalue(), quality=6))
    assert out.shape == (40, 24, 3)
    right, wrong = (np.abs(out.astype(int) - np.rot90(arr, k)).mean() for k in (-1, 1))
    assert right < 8 < wrong
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    with_profile, plain = io.BytesIO(), io.BytesIO()
    Image.fromarray(arr).save(with_profile, "PNG", icc_profile=srgb)
    Image.fromarray(arr).save(plain, "PNG")
    assert codec.compress(with_profile.getvalue(), quality=2) == codec.compress(plain.getvalue(), quality=2)
    broken = io.BytesIO()
    Image.fromarray(arr).save(broken, "PNG", icc_profile=b"not a profile at all")
    with pytest.raises(codec.CodecError, match="ICC colour profile"):
        codec.compress(broken.getvalue())


@pytest.mark.parametrize("width,height", [(4, 1 << 20), (1, 1 << 20), (32, 131104), (1 << 20, 1)])
def test_wavefront_work_a_stream_declares_is_bounded_by_its_size(width, height):
    """An overfit stream whose header declares a long thin image passes the pixel rule but
    would take a sequential step per anti-diagonal: refused before decoding, at once."""
    import time
    from dataclasses import replace

    from codec.container import read_container, write_container

    root = Path(__file__).resolve().parents[2] / "bitstreams" / "conformance" / "v2"
    real = (root / "overfit-q2-rgb.lcd").read_bytes()
    c = read_container(real)
    forged = write_container(replace(c.header, width=width, height=height), c.sections)
    t0 = time.perf_counter()
    with pytest.raises(codec.CorruptStreamError, match="sequential decoding steps"):
        codec.decompress(forged)
    assert time.perf_counter() - t0 < 1.0
    assert codec.decompress(real).shape[:2] == (c.header.height, c.header.width)  # real streams pass


def test_real_overfit_streams_declare_few_steps_per_byte():
    spec = codec.get_codec("overfit")
    root = Path(__file__).resolve().parents[2] / "bitstreams" / "conformance"
    for path in sorted(root.glob("v*/overfit-*.lcd")):
        data = path.read_bytes()
        h = codec.info(data)
        assert spec.decode_steps(h["width"], h["height"]) <= len(data), path.name
