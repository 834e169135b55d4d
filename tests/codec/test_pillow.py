"""The Pillow plugin, in a fresh process as a user would load it: open, load, save, round
trip, grayscale, refusal of what is not a stream."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import io, sys
import numpy as np
from PIL import Image
import codec.pillow  # registers .lcd
import codec

src = Image.open(sys.argv[1]).convert("RGB").crop((0, 0, 72, 40))
out = sys.argv[2]
src.save(out, quality=2)                       # by extension
im = Image.open(out)
assert im.format == "LCODEC" and im.size == (72, 40) and im.mode == "RGB", (im.format, im.size, im.mode)
a = np.asarray(im)
assert a.shape == (40, 72, 3) and np.array_equal(a, codec.decompress(out))
assert np.abs(a.astype(int) - np.asarray(src)).mean() < 20
buf = io.BytesIO()
src.convert("L").save(buf, format="LCODEC", codec="hyperprior", quality=5)
g = Image.open(io.BytesIO(buf.getvalue()))
assert g.mode == "L" and np.asarray(g).shape == (40, 72)
assert Image.open(io.BytesIO(buf.getvalue())).info["lcodec_quality"] == 5
try:
    Image.open(io.BytesIO(b"LCDC" + b"\0" * 40))
except Exception as exc:  # Pillow: cannot identify image file
    assert "cannot identify" in str(exc), exc
else:
    raise AssertionError("a broken stream opened")
print("ok")
"""


def test_pillow_plugin_round_trip_in_a_fresh_process(tmp_path, sample_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(sample_path), str(tmp_path / "x.lcd")],
                          capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT),
                                                                        "OPENBLAS_NUM_THREADS": "1",
                                                                        "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
