"""The validation split and the augmented crops shared by every trainable codec."""

from pathlib import Path

import numpy as np
import pytest
import torch

from codec.training.data import Augment, augmented_batch, colour_jitter, image_files, is_validation


def test_split_is_a_pure_function_of_the_name(tmp_path: Path) -> None:
    names = [f"img_{i:04d}.png" for i in range(2000)]
    for n in names:
        (tmp_path / n).write_bytes(b"")
    val = image_files(tmp_path, "val")
    train = image_files(tmp_path, "train")
    assert not set(val) & set(train)
    assert len(val) + len(train) == len(image_files(tmp_path, "all")) == 2000
    assert 150 < len(val) < 250  # one in ten
    # adding files never moves an existing file between the parts
    (tmp_path / "zzz_new.png").write_bytes(b"")
    assert set(val) <= set(image_files(tmp_path, "val"))
    assert all(is_validation(p.name) for p in val)


def test_unknown_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        image_files(tmp_path, "test")


def test_batches_are_reproducible_and_in_range() -> None:
    images = torch.randint(0, 256, (5, 3, 256, 256), dtype=torch.uint8)
    a = augmented_batch(images, 8, torch.Generator().manual_seed(3))
    b = augmented_batch(images, 8, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(torch.round(a * 255), a * 255)  # 8-bit levels, as coded images are
    crop = a.shape[-1]
    assert crop in Augment().crops and a.shape[0] == round(8 * 128**2 / crop**2)


def test_plain_crops_are_pixels_of_the_source() -> None:
    images = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    aug = Augment(flips=False, rotations=False, min_scale=1.0, colour_prob=0.0, crops=(64,), reference_crop=64)
    out = augmented_batch(images, 1, torch.Generator().manual_seed(0), aug)
    assert torch.equal(out[0] * 255, images[0].float())


def test_colour_jitter_keeps_grey_grey_and_moves_colour() -> None:
    gen = torch.Generator().manual_seed(1)
    grey = torch.full((3, 8, 8), 0.4)
    assert torch.allclose(colour_jitter(grey, gen, Augment()), grey, atol=1e-5)
    magenta = torch.stack([torch.full((8, 8), 0.9), torch.full((8, 8), 0.1), torch.full((8, 8), 0.8)])
    outs = [colour_jitter(magenta, gen, Augment()) for _ in range(20)]
    assert all(o.min() >= 0 and o.max() <= 1 for o in outs)
    assert len({tuple(np.round(o[:, 0, 0].numpy(), 2)) for o in outs}) > 10  # hues and saturations vary
