"""Weights files: atomic write, manifest, checksum, readable permissions."""

import json
import stat

import pytest
import torch

from codec.errors import WeightsError
from codec.weightfiles import read_weights, sha256_file, write_weights


def test_write_read_round_trip_with_manifest_and_mode(tmp_path):
    path = tmp_path / "w.safetensors"
    tensors = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    full = write_weights(tensors, {"k": "v"}, path, {"steps": 7})
    assert full["sha256"] == sha256_file(path) and full["steps"] == 7
    assert json.loads(path.with_suffix(".json").read_text()) == full
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # shipped in the package: readable by all
    back, meta = read_weights(path, full["sha256"])
    assert torch.equal(back["a"], tensors["a"]) and meta["k"] == "v"
    assert not list(tmp_path.glob("*.tmp"))


def test_tampered_or_foreign_files_are_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    full = write_weights({"a": torch.zeros(3)}, {}, path, {})
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match="SHA-256"):
        read_weights(path, full["sha256"])
    path.write_bytes(b"not a weights file")
    with pytest.raises(WeightsError):
        read_weights(path)
    with pytest.raises(WeightsError, match="cannot read"):
        read_weights(tmp_path / "missing.safetensors")
