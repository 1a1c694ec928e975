"""Three faults of a Patroni + etcd cluster under payments (contract 15), one after another.

    .venv/bin/python scripts/ha_drill.py [--rate 50] [--json out.json] [--keep DIR]

Starts the cluster with ``scripts/ha.py up`` (etcd, a leader and its synchronous standby),
``flask db upgrade``, then the Procfile's web (gunicorn) and worker (``python -m jobs``) on
the multi-host ``DATABASE_URL`` it prints, and a webhook receiver on loopback. Payments
(each after an inquiry, each with an ``X-Async`` callback) go at ``--rate`` per second
while ``/health`` is asked every half second, through three faults:

1. **leader lost**: the leader's Patroni and postmaster (with its children) SIGKILLed
   together; Patroni promotes the standby by itself; the lost node is started again
   (``ha.py restart``) ``--rejoin-after`` seconds later and rejoins as the standby;
2. **synchronous standby lost**: the same to the standby; Patroni drops to asynchronous;
   started again ``--rejoin-after`` seconds later, it rejoins as the synchronous standby;
3. **etcd frozen**: SIGSTOP for ``--freeze`` seconds (30), then SIGCONT; failsafe keeps the
   leader writable.

Then the job server drains and the checks run (scripts/ha_figures.py): nothing answered
202 is lost, each payment posted once, the ledger adds up, every callback delivered (a
repeat only for one in flight at a fault, with its X-Event-Id), no 500, every 503 with
Retry-After, no request over REQUEST_DEADLINE_SECONDS, payments accepted again within 30 s
of each fault, both lost nodes back, /health answered within 1 s every time. Exits 1 when
a check fails. Everything it starts is stopped at the end; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ha  # noqa: E402 (scripts/, beside this file)
from drill_traffic import HealthSampler, Receiver, Traffic, drain, pay_one  # noqa: E402
from ha_figures import checks, figures, report  # noqa: E402

from bench import common  # noqa: E402

PARTNER = "01"
#: Partners in flight at once; a payment due while all are waiting is not sent (counted).
MAX_IN_FLIGHT = 96


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                raw = Path(f"/proc/{entry}/stat").read_text()
                if int(raw[raw.rindex(")") + 2 :].split()[1]) == parent:
                    found.append(int(entry))
    return found


def member(folder: Path, role: str) -> dict:
    return next(m for m in ha.members(folder) if m.get("role") == role)


def kill_node(folder: Path, role: str) -> str:
    """SIGKILL the Patroni and the postmaster (with every child) of the member in ``role``
    at once: the host is lost. Its name."""
    node = member(folder, role)
    pids = [node["patroni_pid"], node["postmaster_pid"], *_children(node["postmaster_pid"])]
    for sig in (signal.SIGSTOP, signal.SIGKILL):  # frozen first: none outlives the others
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(pid, sig)
    return node["name"]


def etcd_signal(folder: Path, sig: signal.Signals) -> None:
    etcd = next(m for m in ha.members(folder) if m["name"] == "etcd")
    os.kill(etcd["pid"], sig)


def plan(args) -> list[tuple[float, str]]:
    """The steps, each with its delay after the one before (a kill also waits until a member
    holds the role: the pair stands again)."""
    return [
        (args.first_at, "kill leader"),
        (args.rejoin_after, "restart lost"),
        (args.settle, "kill sync_standby"),
        (args.rejoin_after, "restart lost"),
        (args.settle, "freeze etcd"),
        (args.freeze, "thaw etcd"),
        (args.tail, "end"),
    ]


def longest(args) -> float:
    """The traffic's length when no step waits."""
    return sum(delay for delay, _ in plan(args))


def _holds(folder: Path, role: str) -> bool:
    return any(m.get("role") == role for m in ha.members(folder))


def drive(port: int, token: str, callback: str, args, folder: Path) -> dict:
    """The traffic (an open loop at ``rate``) and the faults on schedule."""
    traffic = Traffic()
    steps = plan(args)
    events: list[tuple[str, float, str]] = []  # (step, monotonic time, detail)
    lost = ""
    start = last = time.monotonic()
    checked = 0.0
    busy: set[int] = set()
    skipped = 0
    with ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT) as pool:
        k = 0
        while steps:
            now = time.monotonic()
            delay, step = steps[0]
            if now - last >= delay:
                role = step.split()[1] if step.startswith("kill ") else None
                ready = role is None
                if role and now - checked >= 1:  # asked once a second until the pair stands
                    checked = now
                    ready = _holds(folder, role)
                if ready:
                    steps.pop(0)
                    detail = ""
                    if role:
                        lost = detail = kill_node(folder, role)
                    elif step == "restart lost":
                        detail = f"{lost}: patroni pid {ha.restart(folder, lost)}"
                    elif step == "freeze etcd":
                        etcd_signal(folder, signal.SIGSTOP)
                    elif step == "thaw etcd":
                        etcd_signal(folder, signal.SIGCONT)
                    last = time.monotonic()
                    events.append((step, last, detail))
                    common.log(f"{last - start:6.1f} s  {step} {detail}")
                    continue
            due = start + k / args.rate
            if due > time.monotonic():
                time.sleep(min(due - time.monotonic(), 0.1))
                continue
            if len(busy) < MAX_IN_FLIGHT:  # never a backlog on our side: a late request is not sent
                busy.add(k)
                pool.submit(_pay, port, token, k, callback, traffic, busy)
            else:
                skipped += 1
            k += 1
    return {"traffic": traffic, "events": events, "start": start, "count": k, "not_sent": skipped}


def _pay(port, token, k, callback, traffic, busy: set) -> None:
    try:
        pay_one(port, token, k, callback, traffic)
    finally:
        busy.discard(k)


def wait_for_pair(folder: Path, seconds: float) -> float | None:
    """Seconds until a leader and a synchronous standby stand again (None: not within ``seconds``)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        roles = sorted(str(m.get("role")) for m in ha.members(folder) if m["name"] != "etcd")
        if roles == ["leader", "sync_standby"]:
            return round(time.monotonic() - started, 1)
        time.sleep(1)
    return None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="payments per second (50)")
    parser.add_argument("--first-at", type=float, default=10.0, help="the first fault (10 s)")
    parser.add_argument("--rejoin-after", type=float, default=30.0, help="a lost node back after (30 s)")
    parser.add_argument("--settle", type=float, default=15.0, help="before the next fault (15 s)")
    parser.add_argument("--freeze", type=float, default=30.0, help="etcd frozen this long (30 s)")
    parser.add_argument("--tail", type=float, default=15.0, help="traffic after the last step (15 s)")
    parser.add_argument("--drain-seconds", type=float, default=600.0, help="wait for the job server (600)")
    parser.add_argument("--json", type=Path, help="also write the figures and checks to this file")
    parser.add_argument("--keep", type=Path, help="copy the logs (service, Patroni, etcd) here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.signal(signal.SIGTERM, _terminated)
    signal.alarm(int(longest(args) + args.drain_seconds + 600))
    folder = Path(tempfile.mkdtemp(prefix="pdam-ha-drill-"))
    folder.chmod(0o755)
    receiver = Receiver()
    try:
        common.log(f"starting the cluster under {folder}")
        t = time.monotonic()
        state = ha.up(folder)
        url = ha.database_url(state)
        common.log(f"cluster up in {time.monotonic() - t:.0f} s; DATABASE_URL={url}")
        env = {**os.environ, "DATABASE_URL": url, "BILLING_DATABASE_URL": ""}
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT, env=env, check=True, timeout=120, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        with common.service_setup(url, [PARTNER]) as setup:
            # room for steps that wait for the pair to stand again
            common.seed_customers(setup, int((longest(args) + 120) * args.rate))
            logs = folder / "logs"
            logs.mkdir()
            extra = {
                "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
                "STALLED_JOB_SECONDS": "10",
                "POSTING_RETRY_SECONDS": "5",
                "DB_CONNECT_TIMEOUT": "2",
            }
            with (
                common.web(setup, logs / "web.log", **extra) as web,
                common.worker(setup, logs / "worker.log", **extra),
            ):
                common.log(f"{args.rate:.0f} payments/s with X-Async on gunicorn port {web.port}")
                sampler = HealthSampler(web.port)
                run = drive(web.port, setup.tokens[PARTNER], receiver.url, args, folder)
                run["health"] = sampler.stop()
                run["pair_again_seconds"] = wait_for_pair(folder, 60)
                common.log("traffic done; waiting for the job server to drain")
                drained = time.monotonic()
                drain(url, args.drain_seconds)
                common.log(f"drained in {time.monotonic() - drained:.0f} s")
                time.sleep(1)
        result = figures(url, run, receiver, folder)
        result["members_at_end"] = ha.members(folder)
    finally:
        signal.alarm(0)
        receiver.close()
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for log in [*folder.glob("*.log"), *folder.glob("node*/*.log"), *folder.glob("logs/*.log")]:
                shutil.copy(log, args.keep / f"{log.parent.name}-{log.name}")
        if (folder / "cluster.json").exists():
            ha.down(folder)
        shutil.rmtree(folder, ignore_errors=True)
    results = checks(result)
    report(result)
    for name, ok, detail in results:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    if args.json:
        out = {"figures": result, "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in results]}
        args.json.write_text(json.dumps(out, indent=1, default=str))
    return 0 if all(ok for _, ok, _ in results) else 1


def _out_of_time(*_):
    raise TimeoutError("the drill ran out of time")


def _terminated(*_):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
