"""Training images: a fixed validation split and augmented random crops.

The split is a pure function of each file's name (CRC-32 of the name, one in ten to
validation), so training, evaluation and every machine agree on it without a list file,
and adding images to the folder never moves an existing image between the two parts.

Augmentation covers what test photographs have and 256x256 crops of a small set lack:
flips and 90-degree rotations, random downscaling (0.5-1x) before cropping, so that
textures appear at the scale of larger originals, and colour augmentation (saturation
and hue jitter, channel permutations) so that strongly saturated colours are seen in
training. Without the last, a model fitted to natural-photo statistics pulls saturated
colours towards grey (the green of a magenta flower rises); see Ballé et al.,
"Variational image compression with a scale hyperprior" (ICLR 2018) for the usual crop
and flip recipe this extends.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".webp", ".tif", ".tiff"}
VALIDATION_MODULUS = 10  # one image in ten is held out


def is_validation(name: str) -> bool:
    """Whether the image named ``name`` (a file name, no folder) belongs to the validation split."""
    return zlib.crc32(name.encode("utf-8")) % VALIDATION_MODULUS == 0


def image_files(folder: Path, split: str = "all") -> list[Path]:
    """Image files of ``folder`` (sorted), restricted to ``split``: "train", "val" or "all"."""
    if split not in ("train", "val", "all"):
        raise ValueError(f"split must be train, val or all, not {split!r}")
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if split == "val":
        return [p for p in files if is_validation(p.name)]
    if split == "train":
        return [p for p in files if not is_validation(p.name)]
    return files


@dataclass(frozen=True)
class Augment:
    """What :func:`augmented_batch` may do to a crop."""

    flips: bool = True  # horizontal flips
    rotations: bool = True  # 90-degree rotations
    min_scale: float = 0.5  # random downscaling before the crop (1.0: none)
    colour_prob: float = 0.3  # share of crops with colour augmentation
    saturation: tuple[float, float] = (0.6, 1.8)
    max_hue: float = math.pi  # radians of hue rotation
    crops: tuple[int, ...] = (64, 128, 192)  # one crop size per batch, drawn from these
    #: the batch size given to :func:`augmented_batch` counts crops of this size; batches of
    #: other sizes hold as many pixels (32 crops of 64, 4 of 192 for a batch of 8)
    reference_crop: int = 128


def _rgb_to_yiq(x):  # type: ignore[no-untyped-def]
    import torch

    m = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    return torch.einsum("ij,jhw->ihw", m, x)


def _yiq_to_rgb(x):  # type: ignore[no-untyped-def]
    import torch

    m = torch.linalg.inv(torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]))
    return torch.einsum("ij,jhw->ihw", m, x)


def colour_jitter(x, gen, aug: Augment):  # type: ignore[no-untyped-def]
    """Channel permutation, hue rotation and saturation scaling of one crop (3, H, W) in [0, 1]."""
    import torch

    perm = torch.randperm(3, generator=gen)
    x = x[perm]
    yiq = _rgb_to_yiq(x)
    angle = (torch.rand((), generator=gen) * 2 - 1) * aug.max_hue
    lo, hi = aug.saturation
    sat = lo + (hi - lo) * torch.rand((), generator=gen)
    c, s = torch.cos(angle) * sat, torch.sin(angle) * sat
    i, q = yiq[1].clone(), yiq[2].clone()
    yiq[1] = c * i - s * q
    yiq[2] = s * i + c * q
    return _yiq_to_rgb(yiq).clamp(0.0, 1.0)


def augmented_batch(images, batch: int, gen, aug: Augment = Augment()):  # type: ignore[no-untyped-def]
    """Augmented crops (B, 3, C, C) in [0, 1], rounded to 8-bit levels.

    ``images``: uint8 tensor (n, 3, H, W). The crop size C is drawn from ``aug.crops``;
    B is ``batch`` scaled to the pixels of ``batch`` crops of ``aug.reference_crop``.
    """
    import torch
    import torch.nn.functional as F

    n, _, H, W = images.shape
    crop = aug.crops[int(torch.randint(0, len(aug.crops), (1,), generator=gen))]
    if crop > min(H, W):
        raise ValueError(f"crop {crop} is larger than the training images ({W}x{H})")
    batch = max(1, round(batch * aug.reference_crop ** 2 / crop ** 2))
    out = torch.empty(batch, 3, crop, crop)
    for b in range(batch):
        img = images[int(torch.randint(0, n, (1,), generator=gen))].float() / 255.0
        lo = max(aug.min_scale, crop / min(H, W))
        scale = lo + (1.0 - lo) * float(torch.rand((), generator=gen))
        if scale < 0.999:
            h, w = max(crop, round(H * scale)), max(crop, round(W * scale))
            img = F.interpolate(img[None], size=(h, w), mode="bilinear", antialias=True, align_corners=False)[0]
        _, h, w = img.shape
        y = int(torch.randint(0, h - crop + 1, (1,), generator=gen))
        x = int(torch.randint(0, w - crop + 1, (1,), generator=gen))
        c = img[:, y:y + crop, x:x + crop]
        if aug.rotations:
            c = torch.rot90(c, int(torch.randint(0, 4, (1,), generator=gen)), dims=(1, 2))
        if aug.flips and bool(torch.rand((), generator=gen) < 0.5):
            c = c.flip(-1)
        if aug.colour_prob > 0 and float(torch.rand((), generator=gen)) < aug.colour_prob:
            c = colour_jitter(c, gen, aug)
        out[b] = c
    return torch.round(out.clamp(0.0, 1.0) * 255.0) / 255.0


def load_images(files: list[Path]):  # type: ignore[no-untyped-def]
    """The images as one uint8 tensor (n, 3, H, W); all must share one size."""
    import torch
    from PIL import Image

    if not files:
        raise FileNotFoundError("no training images")
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in files]
    shape = arrays[0].shape
    arrays = [a for a in arrays if a.shape == shape]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
