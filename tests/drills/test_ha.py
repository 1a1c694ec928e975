"""The Patroni + etcd cluster of scripts/ha.py (contract 15), as an operator runs it, and its
three faults under payments (scripts/ha_drill.py). Drills: ``make drill`` (CI's drill leg);
skipped where etcd or Patroni is not installed (``apt-get install etcd-server``,
``make ha-install``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import ha  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.drill,
    pytest.mark.skipif(
        not Path("/usr/bin/etcd").exists() or not (ha.PATRONI_VENV / "bin" / "patroni").exists(),
        reason="no etcd (apt-get install etcd-server) or no Patroni (make ha-install)",
    ),
]


def _ha(*args: str, timeout: float = 240) -> str:
    run = subprocess.run(
        [sys.executable, "scripts/ha.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_up_status_restart_down(tmp_path_factory):
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="pdam-ha-test-"))  # not under pytest's 0700 root
    folder.chmod(0o755)
    try:
        lines = dict(line.split("=", 1) for line in _ha("up", str(folder)).splitlines())
        assert lines["DATABASE_URL"].endswith("/pdam?target_session_attrs=read-write")
        assert Path(lines["PATRONICTL_CONFIG_FILE"]).exists()
        members = json.loads(_ha("status", str(folder)))
        nodes = {m["name"]: m for m in members if m["name"] != "etcd"}
        assert sorted(m["role"] for m in nodes.values()) == ["leader", "sync_standby"]
        for m in nodes.values():
            assert set(m) >= {
                "name",
                "role",
                "state",
                "host",
                "port",
                "api_url",
                "postmaster_pid",
                "patroni_pid",
            }
            assert m["state"] == "running" and m["postmaster_pid"] != m["patroni_pid"]
        etcd = next(m for m in members if m["name"] == "etcd")
        assert etcd["pid"]
        # the service's URL reaches the leader and can write
        import psycopg

        with psycopg.connect(lines["DATABASE_URL"], autocommit=True) as conn:
            assert conn.execute("select pg_is_in_recovery()").fetchone()[0] is False
        # a standby's host lost (Patroni and postmaster SIGKILLed), then back: it rejoins
        standby = next(m for m in nodes.values() if m["role"] == "sync_standby")
        for pid in (standby["patroni_pid"], standby["postmaster_pid"]):
            os.kill(pid, 9)
        import time

        time.sleep(1)
        again = {m["name"]: m for m in json.loads(_ha("status", str(folder)))}
        assert again[standby["name"]]["patroni_pid"] is None and again[standby["name"]]["role"] is None
        _ha("restart", str(folder), standby["name"])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            again = {m["name"]: m for m in json.loads(_ha("status", str(folder)))}
            if again[standby["name"]]["role"] == "sync_standby":
                break
            time.sleep(1)
        assert again[standby["name"]]["role"] == "sync_standby", again
    finally:
        _ha("down", str(folder))
        ports = [m["port"] for m in members] if "members" in locals() else []
        shutil.rmtree(folder, ignore_errors=True)
    assert not ha.pids_by_port(ports)


def test_three_faults_under_payments(tmp_path):
    out = tmp_path / "drill.json"
    run = subprocess.run(
        [sys.executable, "scripts/ha_drill.py", "--json", str(out), "--keep", str(tmp_path / "logs")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert out.exists(), run.stdout + run.stderr
    result = json.loads(out.read_text())
    failed = [c for c in result["checks"] if not c["ok"]]
    assert not failed, (failed, run.stdout[-4000:])
    assert run.returncode == 0
    f = result["figures"]
    assert f["accepted_202"] > 0.8 * f["payments_sent"]
    assert f["status_500"] == 0 and f["over_deadline"] == 0
    assert set(f["phases"]) == {"kill leader", "kill sync_standby", "freeze etcd"}
