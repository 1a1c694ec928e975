"""The Makefile's niceties for a newcomer: ``make run`` checks its port before anything else,
``make clean`` stops the embedded PostgreSQL before it deletes its files."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _make(*args: str, cwd: Path = ROOT, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    return subprocess.run(
        ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_make_run_on_a_taken_port_stops_before_it_seeds_or_mints(tmp_path):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = _make("run", f"PORT={port}")
    assert res.returncode != 0
    assert f"port {port} is taken" in res.stderr and f"PORT={port + 1} make run" in res.stderr
    assert "db upgrade" not in res.stdout and "demo" not in res.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_make_clean_stops_the_embedded_server_then_deletes_it():
    # A folder of its own under /tmp, not pytest's: as root, pgserver runs the server as an
    # unprivileged user, who must reach the folder (pytest keeps its own at mode 0700).
    folder = Path(tempfile.mkdtemp(prefix="pdam-make-clean-"))
    data = folder / "instance" / "pgdata"
    try:
        started = subprocess.run(
            [sys.executable, "-c", f"from pdam.infra import embedded; embedded.start({str(data)!r})"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert started.returncode == 0, started.stderr
        pid = int((data / "postmaster.pid").read_text().split()[0])
        assert _alive(pid)
        # A venv of its own to delete (never the suite's); make runs from that folder.
        (folder / "venv").mkdir()
        (folder / "scripts").mkdir()
        (folder / "scripts" / "embedded_stop.py").write_bytes(
            (ROOT / "scripts" / "embedded_stop.py").read_bytes()
        )
        res = _make("clean", "VENV=venv", cwd=folder)
        assert res.returncode == 0, res.stderr
        for _ in range(50):
            if not _alive(pid):
                break
            time.sleep(0.1)
        assert not _alive(pid), "the embedded server outlived make clean"
        assert not (folder / "instance").exists() and not (folder / "venv").exists()
    finally:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "embedded_stop.py"), str(data)], timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
