"""The README's Python examples run as written (placeholders bound to real data)."""

import re
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_library_examples_run(tmp_path, monkeypatch, capsys):
    blocks = _python_blocks()
    assert len(blocks) >= 2
    photo = np.asarray(Image.open(ROOT / "samples" / "parrots.png").convert("RGB"))[:64, :96]
    Image.fromarray(photo).save(tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 2, (3, 28, 28), dtype=np.uint8) * 255
    # the blocks read as one session: later ones use names the first defines
    namespace = {"array_hxwx3_uint8": photo, "digit_28x28_uint8": digits[0], "images_nx28x28_uint8": digits}
    for block in blocks:
        # overfit examples fit for minutes; tests/codec/test_overfit.py covers those options
        code = "\n".join(line for line in block.splitlines() if '"overfit"' not in line)
        exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["pixels"].shape == photo.shape
    assert namespace["enc"].images == 3
    assert np.array_equal(namespace["codec"].decompress(namespace["enc"].data)[..., 0], digits)
    assert capsys.readouterr().out.strip()  # the CodecError example prints its message
