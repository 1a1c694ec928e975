"""Losing the primary: a failover drill on a primary and its synchronous standby.

    .venv/bin/python scripts/failover_drill.py [--seconds 30] [--rate 50] [--json out.json]

Builds two PostgreSQL clusters from the embedded server's binaries on loopback ports
(a primary with ``synchronous_standby_names`` and ``synchronous_commit = on``, a
standby from ``pg_basebackup -R``), runs ``flask db upgrade``, then the Procfile's
web (gunicorn) and worker (``python -m jobs``) with a ``DATABASE_URL`` listing both
hosts and ``target_session_attrs=read-write``, and a webhook receiver on loopback.
It sends payments at ``--rate`` per second for ``--seconds`` (each after an inquiry,
each with an ``X-Async`` callback), kills the primary with SIGKILL at ``--kill-at``
seconds, promotes the standby ``--promote-after`` seconds later, lets the job server
drain, and checks:

- every payment answered 202 exists on the new primary, posted exactly once;
- the ledger's paid bills add up to the posted payments;
- every callback delivered once per X-Event-Id (an attempt in flight at the kill may be
  sent again with its X-Event-Id: delivery is at least once), or pending in ``webhook_delivery``;
- web and worker recovered by themselves within 30 s of the promotion;
- requests during the gap got 503 with ``Retry-After``, never a 500.

Exits 1 when a check fails. Everything it starts (servers, processes, folders) is
stopped and removed at the end; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from drill_traffic import HealthSampler, Receiver, Traffic, drain, pay_one  # noqa: E402 (scripts/, beside this file)
from failover_figures import checks, figures, report  # noqa: E402

from bench import common  # noqa: E402

PARTNER = "01"


# --- the two clusters ---------------------------------------------------------------


class Cluster:
    """A PostgreSQL cluster of the embedded server's binaries on a loopback port (run as
    the unprivileged ``pgserver`` user when this script runs as root, as pgserver does)."""

    def __init__(self, folder: Path, name: str):
        with warnings.catch_warnings():  # pgserver's import warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.name = name
        self.data = folder / name
        self.port = common.free_port()
        self.user = "pgserver" if os.geteuid() == 0 else None

    def run(self, exe: str, *args: str, timeout: float = 120) -> None:
        subprocess.run(
            [str(self.bin / exe), *args],
            check=True,
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data}"
        self.run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.data / "log"), "-o", options, "start")

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def kill(self) -> None:
        """SIGKILL the postmaster and every process of the cluster at once (the machine is lost)."""
        pids = [self.postmaster_pid()] + _children(self.postmaster_pid())
        for sig in (signal.SIGSTOP, signal.SIGKILL):  # frozen first: none outlives the others
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop", timeout=30)


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                raw = Path(f"/proc/{entry}/stat").read_text()
                if int(raw[raw.rindex(")") + 2 :].split()[1]) == parent:
                    found.append(int(entry))
    return found


def build_pair(primary: Cluster, standby: Cluster, asynchronous: bool = False, trap: bool = False) -> None:
    """A primary and its synchronous streaming standby (``pg_basebackup -R``). ``trap``: the
    common way, the primary names its synchronous standby before the copy, so the standby's
    copy names one too (promoted by hand, it waits for a standby that does not exist)."""
    primary.run("initdb", "-D", str(primary.data), "--auth=trust", "-U", "postgres", "--encoding=utf8")
    with (primary.data / "postgresql.conf").open("a") as conf:
        conf.write("synchronous_commit = on\nwal_level = replica\n")
    primary.start()
    with psycopg.connect(primary.url(), autocommit=True) as conn:
        conn.execute("create database pdam")
    if trap:
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            conn.execute("alter system set synchronous_standby_names = 'standby'")
            conn.execute("select pg_reload_conf()")
    source = f"host=127.0.0.1 port={primary.port} user=postgres application_name=standby"
    primary.run("pg_basebackup", "-D", str(standby.data), "-d", source, "-R", "-X", "stream", "-c", "fast")
    standby.start()
    deadline = time.monotonic() + 30
    with psycopg.connect(primary.url(), autocommit=True) as conn:
        # Only now: with no standby attached, every commit would wait for one.
        if not asynchronous and not trap:
            conn.execute("alter system set synchronous_standby_names = 'standby'")
            conn.execute("select pg_reload_conf()")
        while True:
            row = conn.execute(
                "select sync_state from pg_stat_replication where application_name = 'standby'"
            ).fetchone()
            if row and row[0] == ("async" if asynchronous else "sync"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the standby is not streaming as expected: {row}")
            time.sleep(0.2)


def commit_cost(primary: Cluster, count: int = 300) -> dict:
    """What waiting for the standby costs one commit: a one-row insert committed ``count``
    times with ``synchronous_commit = on`` and as many with ``local`` (the primary's own
    flush only), interleaved so both see the same machine. Milliseconds, p50 and p99."""
    times: dict[str, list[float]] = {"on": [], "local": []}
    with psycopg.connect(primary.url()) as conn:
        conn.execute("create table drill_commit (x int)")
        conn.commit()
        for i in range(2 * count):
            mode = "on" if i % 2 else "local"
            conn.execute("set synchronous_commit = on" if mode == "on" else "set synchronous_commit = local")
            conn.commit()
            t = time.perf_counter()
            conn.execute("insert into drill_commit values (1)")
            conn.commit()
            times[mode].append((time.perf_counter() - t) * 1000)
        conn.execute("drop table drill_commit")
        conn.commit()
    out = {}
    for mode, values in times.items():
        values.sort()
        out[mode] = {
            "p50": round(common.percentile(values, 50), 2),
            "p99": round(common.percentile(values, 99), 2),
        }
    return out


# --- the drill -----------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the traffic (default 30)")
    parser.add_argument("--rate", type=float, default=50.0, help="payments per second (default 50)")
    parser.add_argument(
        "--kill-at", type=float, help="SIGKILL the primary after this many seconds (default: a third)"
    )
    parser.add_argument(
        "--promote-after", type=float, default=3.0, help="promote the standby this long after (3)"
    )
    parser.add_argument(
        "--drain-seconds", type=float, default=180.0, help="wait at most this long for the job server (180)"
    )
    parser.add_argument(
        "--asynchronous",
        action="store_true",
        help="for comparison only: an asynchronous standby (commits do not wait for it)",
    )
    parser.add_argument(
        "--trap",
        action="store_true",
        help="the standby's copy names a synchronous standby (built the common way): promoted by hand,"
        " its commits wait for none until the operator clears synchronous_standby_names",
    )
    parser.add_argument(
        "--clear-after",
        type=float,
        default=10.0,
        help="with --trap: clear it this long after the promotion (10)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures and checks to this file")
    parser.add_argument("--keep-logs", type=Path, help="copy the web and worker logs into this folder")
    args = parser.parse_args(argv)
    if args.kill_at is None:
        args.kill_at = args.seconds / 3
    return args


def drive(port: int, token: str, callback: str, args, primary: Cluster, standby: Cluster) -> dict:
    """The traffic (an open loop: payment k starts at k / rate), the kill and the promotion."""
    traffic = Traffic()
    count = int(args.seconds * args.rate)
    events: dict[str, float] = {}
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=64) as pool:
        for k in range(count):
            now = time.monotonic() - start
            if "killed" not in events and now >= args.kill_at:
                primary.kill()
                events["killed"] = time.monotonic()
                common.log(f"primary (port {primary.port}) killed with SIGKILL at {now:.1f} s")
            if "killed" in events and "promoted" not in events:
                if time.monotonic() - events["killed"] >= args.promote_after:
                    pool.submit(_promote, standby, events)
                    events["promoted"] = 0.0  # set when pg_ctl promote returns
            if args.trap and events.get("promoted") and "cleared" not in events:
                if time.monotonic() - events["promoted"] >= args.clear_after:
                    _clear(standby, events)
            due = start + k / args.rate
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            pool.submit(pay_one, port, token, k, callback, traffic)
    if not events.get("promoted"):
        raise RuntimeError("the run ended before the promotion: lengthen --seconds or shorten --kill-at")
    if args.trap and "cleared" not in events:
        raise RuntimeError("the run ended before synchronous_standby_names was cleared: lengthen --seconds")
    return {"traffic": traffic, "count": count, **events, "start": start, "asynchronous": args.asynchronous}


def _clear(standby: Cluster, events: dict) -> None:
    """What the operator does on the new primary: it names no synchronous standby."""
    with psycopg.connect(standby.url(), autocommit=True, connect_timeout=3) as conn:
        conn.execute("alter system set synchronous_standby_names = ''")
        conn.execute("select pg_reload_conf()")
    events["cleared"] = time.monotonic()
    common.log(f"synchronous_standby_names cleared on the new primary (port {standby.port})")


def _promote(standby: Cluster, events: dict) -> None:
    standby.run("pg_ctl", "-D", str(standby.data), "-w", "promote", timeout=60)
    events["promoted"] = time.monotonic()
    events["promoted_at"] = dt.datetime.now(dt.UTC)
    common.log(f"standby (port {standby.port}) promoted")


def main(argv=None) -> int:
    args = parse_args(argv)
    # Bounded in time (the traffic, up to 4 minutes of setup, the drain); SIGTERM cleans up too.
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.signal(signal.SIGTERM, _terminated)
    signal.alarm(int(args.seconds + args.drain_seconds + 240))
    folder = Path(tempfile.mkdtemp(prefix="pdam-failover-"))
    if os.geteuid() == 0:  # the servers run as pgserver's unprivileged user
        from pgserver.utils import ensure_user_exists

        ensure_user_exists("pgserver")
        pw = pwd.getpwnam("pgserver")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
        folder.chmod(0o755)
    primary, standby = Cluster(folder, "primary"), Cluster(folder, "standby")
    receiver = Receiver()
    try:
        common.log(f"building a primary and a synchronous standby under {folder}")
        build_pair(primary, standby, args.asynchronous, args.trap)
        cost = commit_cost(primary)
        url = (
            f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/pdam"
            "?target_session_attrs=read-write"
        )
        env = {**os.environ, "DATABASE_URL": url, "BILLING_DATABASE_URL": ""}
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=120,
            stdout=subprocess.DEVNULL,
        )
        common.log(f"DATABASE_URL={url}")
        with common.service_setup(url, [PARTNER]) as setup:
            common.seed_customers(setup, int(args.seconds * args.rate))
            logs = folder / "logs"
            logs.mkdir()
            extra = {"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1", "STALLED_JOB_SECONDS": "10"}
            try:
                with (
                    common.web(setup, logs / "web.log", **extra) as web,
                    common.worker(setup, logs / "worker.log", **extra),
                ):
                    common.log(
                        f"{args.rate:.0f} payments/s for {args.seconds:.0f} s on gunicorn port {web.port}"
                    )
                    sampler = HealthSampler(web.port)
                    run = drive(web.port, setup.tokens[PARTNER], receiver.url, args, primary, standby)
                    run["health"] = sampler.stop()
                    common.log("traffic done; waiting for the job server to drain")
                    drained = time.monotonic()
                    drain(standby.url("pdam"), args.drain_seconds)
                    common.log(f"drained in {time.monotonic() - drained:.0f} s")
                    time.sleep(1)  # a callback in flight reaches the receiver
            finally:
                if args.keep_logs:
                    args.keep_logs.mkdir(parents=True, exist_ok=True)
                    for log in logs.iterdir():
                        shutil.copy(log, args.keep_logs / log.name)
        result = figures(standby.url("pdam"), run, receiver)
        result["commit_ms"] = cost
    finally:
        signal.alarm(0)
        receiver.close()
        for cluster in (primary, standby):
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
    results = checks(result)
    report(result)
    for name, ok, detail in results:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"figures": result, "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in results]},
                indent=1,
                default=str,
            )
        )
    return 0 if all(ok for _, ok, _ in results) else 1


def _out_of_time(*_):
    raise TimeoutError("the drill ran out of time")


def _terminated(*_):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
