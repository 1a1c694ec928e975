"""A private PostgreSQL server a test may stop and start (outage drills).

Built from pgserver's binaries, listening on a loopback TCP port so its URL
stays the same across restarts. Never the shared test server. ``initdb`` runs
once (its cluster is kept under ``instance/``); each server starts from a copy of it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateServer:
    def __init__(self, path: Path, cluster: Path | None = None):
        """A server in ``path``, its data a copy of ``cluster`` (a stopped server's data
        folder; default: a fresh ``initdb``)."""
        from pgserver._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.path = Path(path)
        self.data = self.path / "data"
        self.port = _free_port()
        self.user = "pgserver" if os.geteuid() == 0 else None
        if self.user:
            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

            ensure_user_exists(self.user)
            self.path.mkdir(parents=True, exist_ok=True)
            ensure_prefix_permissions(self.path)
            pw = pwd.getpwnam(self.user)
            os.chown(self.path, pw.pw_uid, pw.pw_gid)
        subprocess.run(["cp", "-a", str(cluster or self._template()), str(self.data)], check=True, timeout=60)

    _cluster: Path | None = None

    def _template(self) -> Path:
        """A fresh cluster (``initdb``) to copy (``cp -a`` keeps its owner and modes), kept
        under ``instance/`` across runs and shared by the suite's processes: ``initdb`` takes
        seconds, a copy a fraction of one. One folder per PostgreSQL build (its binaries'
        folder and ``postgres --version``); made once, under a lock, and renamed into place
        when whole. ``make clean`` deletes it."""
        if PrivateServer._cluster is not None:
            return PrivateServer._cluster
        version = subprocess.run(
            [str(self.bin / "postgres"), "--version"], check=True, capture_output=True, text=True, timeout=60
        ).stdout
        key = hashlib.sha256(f"{self.bin}\n{version}\n{self.user}".encode()).hexdigest()[:12]
        folder = ROOT / "instance" / f"test-pgcluster-{key}"
        cluster = folder / "data"
        folder.parent.mkdir(parents=True, exist_ok=True)
        with open(folder.parent / f".{folder.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not cluster.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
                work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
                if self.user:
                    pw = pwd.getpwnam(self.user)
                    os.chown(work, pw.pw_uid, pw.pw_gid)
                self._run(
                    "initdb", "-D", str(work / "data"), "--auth=trust", "-U", "postgres", "--encoding=utf8"
                )
                work.rename(folder)
        PrivateServer._cluster = cluster
        return cluster

    def _run(self, exe: str, *args: str) -> None:
        subprocess.run(
            [str(self.bin / exe), *args],
            check=True,
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.data / "log"),
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.data} -c fsync=off",
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", mode, "stop")

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.path, ignore_errors=True)
