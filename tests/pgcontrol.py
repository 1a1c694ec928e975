"""A private PostgreSQL server a test may stop and start (outage drills).

Built from pgserver's binaries, listening on a loopback TCP port so its URL
stays the same across restarts. Never the shared test server. ``initdb`` runs
once per session; each server starts from a copy of that cluster.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateServer:
    def __init__(self, path: Path):
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
        subprocess.run(["cp", "-a", str(self._template()), str(self.data)], check=True, timeout=60)

    _cluster: Path | None = None

    def _template(self) -> Path:
        """A fresh cluster made once per session (``cp -a`` keeps its owner and modes)."""
        if PrivateServer._cluster is None:
            folder = Path(tempfile.mkdtemp(prefix="pdam-pg-cluster-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            if self.user:
                pw = pwd.getpwnam(self.user)
                os.chown(folder, pw.pw_uid, pw.pw_gid)
            cluster = folder / "data"
            self._run("initdb", "-D", str(cluster), "--auth=trust", "-U", "postgres", "--encoding=utf8")
            PrivateServer._cluster = cluster
        return PrivateServer._cluster

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

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop")

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
