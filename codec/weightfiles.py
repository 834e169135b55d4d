"""Weights files shared by every codec: safetensors (never pickle) plus a JSON manifest.

A weights file is found through its manifest (``<name>.json`` beside ``<name>.safetensors``),
which records the file's SHA-256. Loading checks that hash before a byte is interpreted, so
a tampered or truncated file is refused with :class:`codec.errors.WeightsError`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import WeightsError


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_weights(tensors: dict[str, Any], metadata: dict[str, str], path: Path,
                  manifest: dict[str, Any]) -> dict[str, Any]:
    """Write ``path`` (.safetensors, atomically) and its manifest; returns the manifest."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.chmod(tmp, 0o644)  # shipped data, readable by all (the writer's default is owner-only)
    os.replace(tmp, path)
    full = {"file": path.name, "sha256": sha256_file(path), **manifest}
    path.with_suffix(".json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return full


def read_weights(path: Path, expected_sha256: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Tensors and metadata of a weights file, after checking its SHA-256 when one is expected."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        raise WeightsError(f"cannot read weights {path}: {exc.strerror}") from None
    if expected_sha256 is not None and hashlib.sha256(blob).hexdigest() != expected_sha256:
        raise WeightsError(f"weights file {path} fails its SHA-256 check (tampered or truncated)")
    try:
        return load(blob), _read_metadata(blob)
    except (SafetensorError, ValueError, TypeError) as exc:
        raise WeightsError(f"weights file {path} is not a valid lcodec weights file ({exc})") from None


def _read_metadata(blob: bytes) -> dict[str, str]:
    n = int.from_bytes(blob[:8], "little")
    if n <= 0 or n > len(blob) - 8:
        raise ValueError("bad safetensors header")
    header = json.loads(blob[8:8 + n])
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ValueError("bad metadata")
    return meta


@dataclass(frozen=True)
class InstalledWeights:
    path: Path
    manifest: dict[str, Any]

    @property
    def sha256(self) -> str:
        return str(self.manifest["sha256"])

    @property
    def short_hash(self) -> bytes:
        return bytes.fromhex(self.sha256[:16])


def weights_dirs(package_dir: Path) -> list[Path]:
    """Where weights are looked up: ``$LCODEC_WEIGHTS`` (os.pathsep-separated), then the package."""
    extra = [Path(p) for p in os.environ.get("LCODEC_WEIGHTS", "").split(os.pathsep) if p]
    return extra + [package_dir]


def installed_weights(package_dir: Path, pattern: str) -> list[InstalledWeights]:
    """Every weights file whose manifest matches ``pattern`` (a glob) in the search path."""
    found = []
    for d in weights_dirs(package_dir):
        if not d.is_dir():
            continue
        for manifest_path in sorted(d.glob(pattern)):
            try:
                manifest = json.loads(manifest_path.read_text())
                path = manifest_path.with_name(manifest["file"])
                manifest["sha256"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            found.append(InstalledWeights(path, manifest))
    return found


def pick_weights(found: list[InstalledWeights], short_hash: bytes | None, what: str) -> InstalledWeights:
    """The weights a stream names (by a prefix of their SHA-256: 4 bytes in format version 2
    streams, 8 in version 1), or for encoding the most trained ones."""
    if not found:
        raise WeightsError(f"no {what} weights installed (set LCODEC_WEIGHTS to a folder that has them)")
    if short_hash is None:
        return max(found, key=lambda w: (int(w.manifest.get("steps", 0)), w.sha256))
    prefix = short_hash.hex()
    for w in found:
        if prefix and w.sha256.lower().startswith(prefix):
            return w
    raise WeightsError(f"stream needs {what} weights {short_hash.hex()}, which are not installed "
                       "(set LCODEC_WEIGHTS to a folder that has them)")
