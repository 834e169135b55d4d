from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# timing on this kind of machine swings several-fold: no per-example deadlines
settings.register_profile("lcodec", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("lcodec")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
KODAK = SHARED / "kodak"


def shared(relative: str) -> Path:
    """``../shared/data/RELATIVE``, or a skip that says which data a test needs.

    The one place tests reach the shared data; CI always has it, a bare checkout may not.
    """
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{relative}, which is not beside this checkout")
    return path


@pytest.fixture(scope="session")
def shared_data():  # noqa: ANN201 - returns the function above
    return shared


@pytest.fixture(scope="session")
def kodak_crops() -> list[np.ndarray]:
    """Real photographs: crops of three Kodak images (or the bundled sample without shared/)."""
    from codec.imageio import read_image

    if KODAK.is_dir():
        out = []
        for name, (y, x, h, w) in [("kodim01.png", (100, 200, 128, 192)), ("kodim15.png", (0, 0, 96, 160)),
                                   ("kodim23.png", (64, 256, 160, 128))]:
            out.append(read_image(KODAK / name)[y:y + h, x:x + w].copy())
        return out
    img = read_image(ROOT / "samples" / "parrots.png")
    return [img[:128, :192].copy(), img[100:196, 50:210].copy(), img[:160, 100:228].copy()]


@pytest.fixture(scope="session")
def sample_path() -> Path:
    return ROOT / "samples" / "parrots.png"
