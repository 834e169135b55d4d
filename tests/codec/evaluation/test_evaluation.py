import json
import math
from dataclasses import asdict

import numpy as np
import pytest
from PIL import Image

from codec.errors import CodecError
from codec.evaluation.adapters import classical_adapters
from codec.evaluation.runner import (bd_table, curves, expand_images, load_published, parse_codec_arg, psnr_y,
                                     run_eval, write_outputs)


@pytest.fixture()
def images(tmp_path, kodak_crops):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(kodak_crops[:2]):
        Image.fromarray(img).save(folder / f"{i}.png")
    return folder


def test_expand_images_files_folders_globs(images):
    files = sorted(images.iterdir())
    assert expand_images([str(images)]) == files
    assert expand_images([str(files[1]), str(images / "*.png")]) == [files[1], files[0]]
    with pytest.raises(CodecError):
        expand_images([str(images / "none*.png")])


def test_parse_codec_arg():
    assert parse_codec_arg("hyperprior") == ("hyperprior", None)
    assert parse_codec_arg("hyperprior:1,3") == ("hyperprior", [1.0, 3.0])
    with pytest.raises(CodecError):
        parse_codec_arg("hyperprior:a")


def test_psnr_y_of_identical_and_shifted():
    a = np.full((4, 4, 3), 100, np.uint8)
    assert psnr_y(a, a) == math.inf
    b = a + 1
    assert psnr_y(a, b) == pytest.approx(20 * math.log10(255 / (219 / 255)), abs=1e-6)


def test_eval_measures_real_files_and_resumes_from_cache(images, tmp_path):
    jpeg = classical_adapters()["jpeg"]
    out = tmp_path / "out"
    paths = expand_images([str(images)])
    rows = run_eval(paths, [(jpeg, [20, 80])], out)
    assert len(rows) == 4
    # bpp is the size of the real JPEG file Pillow writes
    import io

    img = np.asarray(Image.open(paths[0]))
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=20, optimize=True)
    row = next(r for r in rows if r.image == paths[0].name and r.setting == 20)
    assert row.bytes == len(buf.getvalue())
    assert row.bpp == pytest.approx(8 * len(buf.getvalue()) / (img.shape[0] * img.shape[1]))
    calls = []
    again = run_eval(paths, [(jpeg, [20, 80])], out, progress=lambda d, t, w: calls.append((d, t)))
    assert calls[0] == (4, 4)  # everything came from the cache
    assert sorted(r.key for r in again) == sorted(r.key for r in rows)


def test_a_results_folder_without_its_cache_resumes_from_its_csv(images, tmp_path):
    jpeg = classical_adapters()["jpeg"]
    out = tmp_path / "out"
    paths = expand_images([str(images)])
    rows = run_eval(paths, [(jpeg, [30])], out)
    write_outputs(out, rows, curves(rows, {}), {})
    (out / "cache.jsonl").unlink()  # as in a fresh checkout: the CSV is kept, the cache is not
    calls = []
    again = run_eval(paths, [(jpeg, [30, 60])], out, progress=lambda d, t, w: calls.append((d, t)))
    assert calls[0] == (2, 4)  # the CSV's two rows were reused, the new setting measured
    before = {r.key: r for r in rows}
    for r in again:
        if r.key in before:
            # every field, floats included, read back exactly (json: NaN MS-SSIM compares equal)
            assert json.dumps(asdict(r)) == json.dumps(asdict(before[r.key]))
    # the seeded rows went into the new cache, so a later run still has them
    third = run_eval(paths, [(jpeg, [30])], out, progress=lambda d, t, w: calls.append((d, t)))
    assert calls[-1] == (2, 2)
    assert sorted(r.key for r in third) == sorted(before)


def test_outputs_in_compressai_format(images, tmp_path):
    ad = classical_adapters()
    paths = expand_images([str(images)])
    rows = run_eval(paths, [(ad["jpeg"], [10, 40, 90]), (ad["webp"], [10, 40, 90])], tmp_path)
    cs = curves(rows, {"jpeg": "JPEG", "webp": "WebP"})
    tables = {m: bd_table(cs, m) for m in ("psnr", "ms-ssim")}
    written = write_outputs(tmp_path, rows, cs, tables)
    names = {p.name for p in written}
    assert {"jpeg.json", "webp.json", "per_image.csv", "bd_rate.json", "rd_psnr.png", "rd_msssim.png"} <= names
    j = json.loads((tmp_path / "jpeg.json").read_text())
    assert j["name"] == "jpeg" and len(j["results"]["bpp"]) == 3
    assert {"bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"} <= set(j["results"])
    # a curve loads back as a published curve
    again = load_published(tmp_path / "jpeg.json")
    assert again["results"]["bpp"] == j["results"]["bpp"]
    # B against A and A against B point in opposite directions
    assert tables["psnr"]["webp"]["jpeg"] * tables["psnr"]["jpeg"]["webp"] < 0


@pytest.mark.parametrize("metric", ["psnr", "ms-ssim"])
def test_compressai_plots_our_results(images, tmp_path, metric):
    """CompressAI's own plot module reads an eval output folder's curves."""
    pytest.importorskip("compressai")
    import subprocess
    import sys

    ad = classical_adapters()
    paths = expand_images([str(images)])
    rows = run_eval(paths, [(ad["jpeg"], [20, 60]), (ad["webp"], [20, 60])], tmp_path)
    write_outputs(tmp_path, rows, curves(rows, {}), {},
                  {"dataset": "sample", "image_count": len(paths)})
    png = tmp_path / f"compressai-{metric}.png"
    done = subprocess.run([sys.executable, "-m", "compressai.utils.plot", "-f", str(tmp_path / "jpeg.json"),
                           str(tmp_path / "webp.json"), "-m", metric, "-o", str(png)],
                          capture_output=True, text=True, env={**__import__("os").environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr
    assert png.stat().st_size > 1000


def test_missing_tools_are_reported():
    for name in ("vvc", "bpg"):
        reason = classical_adapters()[name].available()
        assert reason is None or "not on PATH" in reason


def test_overfit_adapter_names_its_preset_and_checks_exactness():
    from codec.evaluation.adapters import lcodec_adapter

    plain, fast, slow = lcodec_adapter("overfit"), lcodec_adapter("overfit-fast"), lcodec_adapter("overfit-slow")
    assert plain.name == fast.name == "overfit-fast" and slow.name == "overfit-slow"
    assert fast.version != slow.version and fast.version.startswith("fit-")
    assert fast.settings == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    with pytest.raises(CodecError, match="overfit-medium"):  # the message lists the variants
        lcodec_adapter("overfit-ludicrous")
    img = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    coded = fast.run(img, 3)  # encodes with verify=True: a mismatch would raise
    import codec

    assert np.array_equal(coded.decoded, codec.decompress(coded.data))
    assert codec.info(coded.data)["codec"] == "overfit"
    assert fast.fitted and not lcodec_adapter("hyperprior").fitted


def test_eval_keeps_the_streams_of_fitted_codecs(tmp_path):
    from codec.evaluation.adapters import lcodec_adapter
    from codec.evaluation.runner import stream_path

    img = np.random.default_rng(1).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    out = tmp_path / "out"
    rows = run_eval([tmp_path / "a.png"], [(lcodec_adapter("overfit-fast"), [2])], out)
    kept = stream_path(out, "overfit-fast", "a.png", 2.0)
    assert kept.stat().st_size == rows[0].bytes
    import codec

    assert codec.decompress(kept.read_bytes()).shape == img.shape
    assert not list(out.glob("streams/**/*.part"))


def test_fitted_codecs_are_left_out_of_the_default_eval(images, tmp_path):
    from click.testing import CliRunner

    from cli.main import main

    r = CliRunner().invoke(main, ["eval", str(images), "--baseline", "none", "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "not measured by default" in r.output and "overfit" in r.output
    assert not (tmp_path / "overfit-fast.json").exists() and (tmp_path / "hyperprior.json").exists()


def test_coolchic_tables_load_as_mean_curves(tmp_path):
    tsv = tmp_path / "cc.tsv"
    tsv.write_text("seq_name\tlmbda\trate_bpp\tn_pixels\tpsnr_db\n"
                   "a\t0.001\t1.0\t10\t30.0\nb\t0.001\t2.0\t10\t32.0\n"
                   "a\t0.004\t0.5\t10\t27.0\nb\t0.004\t0.7\t10\t29.0\n")
    c = load_published(tsv)
    assert c["results"]["bpp"] == pytest.approx([0.6, 1.5]) and c["results"]["psnr-rgb"] == pytest.approx([28, 31])
    tsv.write_text("not\ta table\n")
    with pytest.raises(CodecError, match="Cool-chic"):
        load_published(tsv)


def test_means_and_bd_tables_print_what_was_measured():
    from codec.evaluation.runner import bd_table, format_bd_table, format_means

    def curve(name, bpp, psnr):
        return {"name": name, "results": {"quality": [1, 2, 3, 4], "bpp": bpp, "psnr-rgb": psnr,
                                          "ms-ssim": [0.9] * 4, "encoding_time": [0.5] * 4,
                                          "decoding_time": [0.25] * 4}}

    a = curve("a-long-codec-name", [0.2, 0.4, 0.8, 1.6], [28.0, 31.0, 34.0, 37.0])
    b = curve("b", [0.25, 0.5, 1.0, 2.0], [28.0, 31.0, 34.0, 37.0])
    means = format_means({"a-long-codec-name": a, "b": b}).splitlines()
    assert len(means) == 9 and means[1].split()[:4] == ["a-long-codec-name", "1", "0.2000", "28.00"]
    table = format_bd_table(bd_table({"a-long-codec-name": a, "b": b}, "psnr"), "BD")
    assert "a-long-codec-name" in table.splitlines()[1]  # column names are not cut short
    assert "-20.0%" in table and "+25.0%" in table
    assert "needs at least two curves" in format_bd_table(bd_table({"b": b}, "psnr"), "BD")
