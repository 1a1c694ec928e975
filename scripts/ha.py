"""A local HA cluster: etcd and two Patroni-managed PostgreSQL nodes on loopback ports.

    .venv/bin/python scripts/ha.py up DIR         # start etcd and two nodes under DIR; prints
                                                  #   DATABASE_URL=... and PATRONICTL_CONFIG_FILE=...
    .venv/bin/python scripts/ha.py status DIR     # the members as one JSON list
    .venv/bin/python scripts/ha.py restart DIR NAME   # start that member's Patroni again (a host back)
    .venv/bin/python scripts/ha.py down DIR       # stop it all, restarted members included

One leader and one synchronous standby (``synchronous_mode: true``, not strict: with the
standby gone Patroni lets commits through asynchronously) with ``failsafe_mode`` on: the
leader stays writable while etcd is away as long as it reaches every member's REST API.
The service reaches the leader through the multi-host ``DATABASE_URL`` with
``target_session_attrs=read-write``; it holds no promotion logic.

Timings (``TTL``, ``LOOP_WAIT``, ``RETRY_TIMEOUT`` below; docs/high-availability.md says why):
the leader key lives ``TTL`` seconds, so a lost leader is replaced within about that; a lost
synchronous standby is dropped from ``synchronous_standby_names`` within about ``LOOP_WAIT``,
the time commits wait for it, under the service's deadline.

It installs nothing. It needs etcd (Debian: ``apt-get install etcd-server``), Patroni with
its etcd v3 client in a virtualenv the PostgreSQL user can run (``make ha-install``:
requirements-ha.txt into ``/opt/pdam-patroni``, or ``PATRONI_VENV``), PostgreSQL's server
binaries (Debian's ``/usr/lib/postgresql/15/bin``, or ``PG_BIN_DIR``), and, when run as
root, the unprivileged ``postgres`` user (PostgreSQL refuses to run as root). DIR must be
reachable by that user (not under a 0700 home). Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

TTL, LOOP_WAIT, RETRY_TIMEOUT = 20, 5, 5
SCOPE = "pdam"
NODES = ("node1", "node2")
DATABASE = "pdam"
USER = "postgres"
PATRONI_VENV = Path(os.environ.get("PATRONI_VENV", "/opt/pdam-patroni"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin_dir() -> Path:
    if os.environ.get("PG_BIN_DIR"):
        return Path(os.environ["PG_BIN_DIR"])
    for version in ("17", "16", "15"):
        folder = Path(f"/usr/lib/postgresql/{version}/bin")
        if (folder / "postgres").exists():
            return folder
    raise SystemExit("no PostgreSQL server binaries: apt-get install postgresql-15, or set PG_BIN_DIR")


def _etcd() -> str:
    for path in (os.environ.get("ETCD_BIN"), "/usr/bin/etcd"):
        if path and Path(path).exists():
            return path
    raise SystemExit("no etcd: apt-get install etcd-server (or set ETCD_BIN)")


def _patroni() -> Path:
    exe = PATRONI_VENV / "bin" / "patroni"
    if not exe.exists():
        raise SystemExit(f"no Patroni in {PATRONI_VENV}: make ha-install (or set PATRONI_VENV)")
    return exe


def _as_user() -> dict:
    """Run a child as the unprivileged user when this runs as root."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam(USER)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam(USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _spawn(command: list[str], log: Path, cwd: Path) -> int:
    """A detached child (a session of its own: it outlives this command); its pid."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PATH": f"{PATRONI_VENV / 'bin'}:{os.environ.get('PATH', '')}"},
            **_as_user(),
        )
    return proc.pid


# --- the files under DIR ----------------------------------------------------------------


def _state(folder: Path) -> dict:
    return json.loads((folder / "cluster.json").read_text())


def _node_config(folder: Path, state: dict, name: str) -> str:
    node = state["nodes"][name]
    data = folder / name
    config = {
        "scope": SCOPE,
        "name": name,
        "log": {"dir": str(data), "level": "INFO"},
        "restapi": {"listen": f"127.0.0.1:{node['api']}", "connect_address": f"127.0.0.1:{node['api']}"},
        "etcd3": {"hosts": f"127.0.0.1:{state['etcd']['client']}"},
        "bootstrap": {
            "dcs": {
                "ttl": TTL,
                "loop_wait": LOOP_WAIT,
                "retry_timeout": RETRY_TIMEOUT,
                "maximum_lag_on_failover": 1048576,
                "synchronous_mode": True,
                "synchronous_mode_strict": False,
                "failsafe_mode": True,
                "postgresql": {
                    "use_pg_rewind": True,
                    "parameters": {
                        "wal_level": "replica",
                        "hot_standby": "on",
                        "wal_log_hints": "on",
                        "max_wal_senders": 10,
                        "max_replication_slots": 10,
                        "max_connections": 200,
                    },
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"auth": "trust"}],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{node['pg']}",
            "connect_address": f"127.0.0.1:{node['pg']}",
            "data_dir": str(data / "data"),
            "bin_dir": state["bin_dir"],
            "pgpass": str(data / "pgpass"),
            "authentication": {
                "superuser": {"username": "postgres", "password": "postgres"},
                "replication": {"username": "replicator", "password": "replicator"},
                "rewind": {"username": "postgres", "password": "postgres"},
            },
            "parameters": {"unix_socket_directories": str(data)},
            "pg_hba": [
                "local all all trust",
                "host all all 127.0.0.1/32 trust",
                "host replication all 127.0.0.1/32 trust",
            ],
        },
    }
    path = folder / f"{name}.yml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    _chown(path)
    return str(path)


def database_url(state: dict) -> str:
    hosts = ",".join(f"127.0.0.1:{state['nodes'][n]['pg']}" for n in NODES)
    return f"postgresql://postgres@{hosts}/{DATABASE}?target_session_attrs=read-write"


# --- processes, found by their listening ports ------------------------------------------


def _listeners() -> dict[int, int]:
    """{port: inode} of the TCP sockets listening on this machine."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    found[int(fields[1].rsplit(":", 1)[1], 16)] = int(fields[9])
    return found


def pids_by_port(ports: list[int]) -> dict[int, int]:
    """{port: pid} of the processes listening on ``ports`` (the process table's sockets)."""
    inodes = {inode: port for port, inode in _listeners().items() if port in ports}
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{entry}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{entry}/fd/{fd}")
                    if target.startswith("socket:["):
                        port = inodes.get(int(target[8:-1]))
                        if port is not None:
                            # the postmaster (lowest pid), not a child sharing its socket
                            out[port] = min(out.get(port, int(entry)), int(entry))
    return out


def _api(port: int, path: str = "/patroni", timeout: float = 1.0) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as res:
            return json.loads(res.read())
    except Exception as exc:
        if hasattr(exc, "read"):  # 503 from a replica still carries its JSON
            with contextlib.suppress(Exception):
                return json.loads(exc.read())
        return None


def members(folder: Path) -> list[dict]:
    """The members as Patroni's REST API and the process table say, never waiting on etcd."""
    state = _state(folder)
    ports = [state["etcd"]["client"]] + [
        p for n in NODES for p in (state["nodes"][n]["pg"], state["nodes"][n]["api"])
    ]
    pids = pids_by_port(ports)
    out = []
    for name in NODES:
        node = state["nodes"][name]
        status = _api(node["api"]) or {}
        role = status.get("role")
        if role in ("primary", "master"):
            role = "leader"
        elif role == "replica" and status.get("sync_standby"):
            role = "sync_standby"
        out.append(
            {
                "name": name,
                "role": role,
                "state": status.get("state", "stopped" if node["api"] not in pids else "unknown"),
                "host": "127.0.0.1",
                "port": node["pg"],
                "api_url": f"http://127.0.0.1:{node['api']}/patroni",
                "postmaster_pid": pids.get(node["pg"]),
                "patroni_pid": pids.get(node["api"]),
            }
        )
    out.append({"name": "etcd", "pid": pids.get(state["etcd"]["client"]), "port": state["etcd"]["client"]})
    return out


# --- the commands -------------------------------------------------------------------------


def up(folder: Path, timeout: float = 180) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    _chown(folder)
    folder.chmod(0o755)
    state = {
        "bin_dir": str(_bin_dir()),
        "etcd": {"client": _free_port(), "peer": _free_port()},
        "nodes": {name: {"pg": _free_port(), "api": _free_port()} for name in NODES},
    }
    (folder / "cluster.json").write_text(json.dumps(state, indent=1))
    patroni = _patroni()
    etcd_dir = folder / "etcd"
    etcd_dir.mkdir(exist_ok=True)
    _chown(etcd_dir)
    etcd_dir.chmod(0o700)
    client, peer = (f"http://127.0.0.1:{state['etcd'][k]}" for k in ("client", "peer"))
    _spawn(
        [
            _etcd(), "--name", "etcd", "--data-dir", str(etcd_dir / "data"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"etcd={peer}", "--initial-cluster-state", "new",
        ],
        folder / "etcd.log",
        folder,
    )  # fmt: skip
    _wait(lambda: _api(state["etcd"]["client"], "/health") is not None, 30, "etcd did not start")
    for name in NODES:
        node_dir = folder / name
        node_dir.mkdir(exist_ok=True)
        _chown(node_dir)
        node_dir.chmod(0o700)
        _spawn([str(patroni), _node_config(folder, state, name)], folder / f"{name}.log", folder)
        if name == NODES[0]:  # the first is the leader: the second copies it once it stands
            _wait(lambda: _role(state, NODES[0]) == "leader", timeout, f"no leader; see {folder}/node1.log")
    _wait(
        lambda: sorted(str(_role(state, n)) for n in NODES) == ["leader", "sync_standby"],
        timeout,
        f"no synchronous standby; see {folder}/*.log",
    )
    leader = next(n for n in NODES if _role(state, n) == "leader")
    _create_database(state["nodes"][leader]["pg"])
    return state


def _role(state: dict, name: str) -> str | None:
    status = _api(state["nodes"][name]["api"]) or {}
    if status.get("state") != "running":
        return None
    if status.get("role") in ("primary", "master"):
        return "leader"
    return "sync_standby" if status.get("sync_standby") else status.get("role")


def _create_database(port: int) -> None:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone():
            conn.execute(f"create database {DATABASE}")


def _wait(predicate, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(message)
        time.sleep(0.5)


def restart(folder: Path, name: str) -> int:
    state = _state(folder.resolve())
    if name not in state["nodes"]:
        raise SystemExit(f"no member {name!r}: {', '.join(NODES)}")
    if pids_by_port([state["nodes"][name]["api"]]):
        raise SystemExit(f"{name}'s Patroni is running")
    folder = folder.resolve()
    return _spawn([str(_patroni()), str(folder / f"{name}.yml")], folder / f"{name}.log", folder)


def down(folder: Path, timeout: float = 30) -> None:
    folder = folder.resolve()
    state = _state(folder)
    patronis = [state["nodes"][n]["api"] for n in NODES]
    postmasters = [state["nodes"][n]["pg"] for n in NODES]
    etcd = [state["etcd"]["client"]]
    for pid in pids_by_port(etcd).values():  # a frozen etcd first: Patroni stops faster with it
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    for ports, how in ((patronis, signal.SIGTERM), (postmasters, signal.SIGINT), (etcd, signal.SIGTERM)):
        for pid in pids_by_port(ports).values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, how)
        end = time.monotonic() + timeout
        while pids_by_port(ports) and time.monotonic() < end:
            time.sleep(0.2)
        for pid in pids_by_port(ports).values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("up", "status", "down"):
        sub.add_parser(command).add_argument("dir", type=Path)
    again = sub.add_parser("restart")
    again.add_argument("dir", type=Path)
    again.add_argument("name")
    args = parser.parse_args(argv)
    if args.command == "up":
        state = up(args.dir)
        print(f"DATABASE_URL={database_url(state)}")
        print(f"PATRONICTL_CONFIG_FILE={args.dir.resolve() / (NODES[0] + '.yml')}")
    elif args.command == "status":
        print(json.dumps(members(args.dir)))
    elif args.command == "restart":
        print(f"{args.name}: patroni pid {restart(args.dir, args.name)}")
    else:
        down(args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
