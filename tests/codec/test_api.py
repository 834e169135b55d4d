import io

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
