"""Ctrl-C never leaves a partial output file: during coding, and during the write itself."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli.main import write_output

ROOT = Path(__file__).resolve().parents[2]


def test_interrupt_during_the_write_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "out.lcd"

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_output(str(target), b"x" * 100_000, force=False)
    assert list(tmp_path.iterdir()) == []


def test_interrupt_keeps_the_old_output_when_forcing(tmp_path, monkeypatch):
    target = tmp_path / "out.lcd"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_output(str(target), b"new", force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out.lcd"] and target.read_bytes() == b"old"


def _wait_for_cpu_seconds(proc: subprocess.Popen, seconds: float, limit: float = 120.0) -> None:
    """Until the child has used ``seconds`` of CPU (wall time varies with the machine's load)."""
    stat = Path(f"/proc/{proc.pid}/stat")
    if not stat.exists():  # no procfs: fall back to wall time
        time.sleep(2 * seconds)
        return
    tick = os.sysconf("SC_CLK_TCK")
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit and proc.poll() is None:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        if (int(fields[11]) + int(fields[12])) / tick >= seconds:  # utime + stime
            return
        time.sleep(0.1)


@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_sigint_during_coding_exits_130_and_writes_nothing(tmp_path, command):
    rng = np.random.default_rng(0)
    src = tmp_path / "big.png"
    Image.fromarray(rng.integers(0, 256, (3072, 3072, 3), dtype=np.uint8)).save(src, compress_level=1)
    if command == "compress":
        args, out = [str(src), "-o", str(tmp_path / "big.lcd")], tmp_path / "big.lcd"
    else:
        stream = tmp_path / "big.lcd"
        r = subprocess.run([sys.executable, "-m", "cli.main", "compress", str(src), "-o", str(stream), "-q", "1"],
                           cwd=ROOT, capture_output=True)
        assert r.returncode == 0, r.stderr
        args, out = [str(stream), "-o", str(tmp_path / "back.png")], tmp_path / "back.png"
    before = sorted(p.name for p in tmp_path.iterdir())
    # a shell without job control starts background jobs with SIGINT ignored, and children
    # inherit that: give the child the default disposition, as a terminal would
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", command, *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for_cpu_seconds(proc, 4.0)  # past start-up (imports take about 2), inside the coder
    assert proc.poll() is None, "finished before the interrupt; use a larger image"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    # 130, or killed by the re-raised SIGINT (what a shell also reports as 130)
    assert proc.returncode in (130, -signal.SIGINT), (proc.returncode, err)
    assert b"Traceback" not in err and err.decode().strip() == "lcodec: interrupted"
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
