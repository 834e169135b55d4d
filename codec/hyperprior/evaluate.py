"""Kodak figures for a weights file that need not be installed: real bytes, decoded pixels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np


def evaluate_weights(weights: Path, folder: Path, qualities: list[int] | None = None,
                     log: Callable[[str], None] = print) -> dict[int, dict[str, float]]:
    """Mean bpp (from container bytes) and PSNR (from decoded pixels) per quality."""
    from ..container import CODEC_IDS, Header, read_container, write_container
    from ..evaluation.runner import expand_images
    from ..imageio import read_image
    from ..metrics import psnr
    from .coding import HyperpriorCodec
    from .weights import InstalledWeights, load_model_file

    manifest = json.loads(Path(weights).with_suffix(".json").read_text())
    model, tables = load_model_file(weights, manifest["sha256"], coding_only=True)
    impl = HyperpriorCodec(model, tables, InstalledWeights(Path(weights), manifest))
    files = expand_images([str(folder)])
    out: dict[int, dict[str, float]] = {}
    for q in qualities or list(impl.trained_qualities):
        bpps, psnrs = [], []
        for f in files:
            img = read_image(f)
            sections, _ = impl.encode_rgb(img, q)
            hdr = Header(CODEC_IDS["hyperprior"], impl.model_id, impl.weights_hash,
                         img.shape[1], img.shape[0], 3, q)
            data = write_container(hdr, sections)
            dec = impl.decode_rgb(read_container(data).sections, img.shape[1], img.shape[0], q)
            bpps.append(8.0 * len(data) / (img.shape[0] * img.shape[1]))
            psnrs.append(psnr(img, dec))
        out[q] = {"bpp": round(float(np.mean(bpps)), 4), "psnr": round(float(np.mean(psnrs)), 3)}
        log(f"quality {q}: {out[q]['bpp']:.4f} bpp, {out[q]['psnr']:.2f} dB")
    return out
