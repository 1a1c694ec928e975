"""bench/api.py's figures: one row per phase, the targets, the printed table."""

from __future__ import annotations

import statistics

import common
import loadgen

#: Shares, medians over the rounds: the product's trivial route of the bare Flask app's, and
#: the inquiry's and the payment's of the product's trivial route (issue 22, item 9).
TARGET_SHARE = {"trivial": 0.90, "inquiry": 0.35, "payment": 0.22}
TARGET_OPEN_P99_MS = 25.0
TARGET_RATE_LIMIT_COST = 0.05


def summarize(name: str, r: loadgen.PhaseResult, cpu: dict, base_rps: float | None) -> dict:
    """A phase's row; ``ratio`` is its requests/s as a share of ``base_rps`` (its round's bare
    app for the trivial route, its round's trivial route for the others)."""
    lat = sorted(r.latencies)
    rps = r.requests / r.elapsed if r.elapsed > 0 else 0.0
    return {
        "route": name,
        "requests": r.requests,
        "seconds": round(r.elapsed, 2),
        "rps": round(rps, 1),
        "p50_ms": round(common.percentile(lat, 50) * 1000, 2),
        "p99_ms": round(common.percentile(lat, 99) * 1000, 2),
        "max_ms": round(lat[-1] * 1000, 2) if lat else None,
        "errors": r.errors,
        "error_samples": r.error_samples,
        "ratio": round(rps / base_rps, 3) if base_rps else 1.0,
        "ran_out": r.exhausted,
        "client_cpu": round(cpu["client_cores"], 2),
        "machine_busy": round(cpu["machine_busy"], 2),
        # CPU milliseconds per request in gunicorn and in PostgreSQL; other = cores used by the rest
        "web_cpu_ms": round(cpu["cpu_seconds"].get("web", 0.0) * 1000 / max(r.requests, 1), 2),
        "db_cpu_ms": round(cpu["cpu_seconds"].get("postgres", 0.0) * 1000 / max(r.requests, 1), 2)
        if common.CpuMeter.postmaster
        else None,
        "other_cores": round(cpu["cores"].get("other", 0.0), 2),
        "lock_waits": cpu["lock_waits"],
    }


def shares(rows: list[dict]) -> dict[str, list[float]]:
    """Each round's share, by phase kind (rows tagged ``kind`` by the rounds)."""
    out: dict[str, list[float]] = {}
    for row in rows:
        if row.get("kind") in TARGET_SHARE:
            out.setdefault(row["kind"], []).append(row["ratio"])
    return out


def targets(rows: list[dict]) -> list[dict]:
    checks = []
    for kind, values in shares(rows).items():
        median = statistics.median(values)
        base = "the bare Flask app" if kind == "trivial" else "the trivial route"
        checks.append(
            {
                "check": f"{kind}: req/s >= {TARGET_SHARE[kind]:.2f} of {base} (median of {len(values)} rounds)",
                "value": f"{median:.3f} ({', '.join(f'{v:.2f}' for v in values)})",
                "ok": median >= TARGET_SHARE[kind],
            }
        )

    def limit_share(which: str) -> float | None:
        ratios = [
            r["ratio"] for r in rows if r["route"].startswith(f"GET /tagihan/<cid> (inquiry) limit {which}")
        ]
        return sum(ratios) / len(ratios) if ratios else None

    off, on = limit_share("off"), limit_share("on")
    if off and on:
        cost = 1 - on / off
        checks.append(
            {
                "check": f"rate limit cost: inquiry share of trivial, limit on vs off, <= {TARGET_RATE_LIMIT_COST:.0%}",
                "value": f"{off:.3f} off, {on:.3f} on: {cost:+.1%}",
                "ok": cost <= TARGET_RATE_LIMIT_COST,
            }
        )
    for row in rows:
        if row.get("open_loop"):
            checks.append(
                {
                    "check": f"{row['route']}: p99 < {TARGET_OPEN_P99_MS:.0f} ms, 0 errors",
                    "value": f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, {row['errors']} errors",
                    "ok": row["p99_ms"] < TARGET_OPEN_P99_MS and not row["errors"],
                }
            )
    return checks


def _waits(waits: dict) -> str:
    return " ".join(f"{k} {v:.0%}" for k, v in sorted(waits.items())) or "-"


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def print_report(info: dict, rows: list[dict], checks: list[dict]) -> None:
    print()
    for k, v in info.items():
        print(f"{k:>12}: {v}")
    print()
    head = (
        f"{'route':<46} {'requests':>8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'share':>6}"
    )
    head += f" {'web cpu':>7} {'db cpu':>6} {'client':>6} {'others':>6} {'busy':>5}  lock waits"
    print(head)
    print("-" * len(head))
    for r in rows:
        note = "  (ran out of inquiries)" if r["ran_out"] else ""
        print(
            f"{r['route']:<46} {r['requests']:>8} {r['rps']:>8.0f} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f}"
            f" {r['errors']:>6} {r['ratio']:>6.2f} {r['web_cpu_ms']:>7.2f} {_num(r['db_cpu_ms']):>6}"
            f" {r['client_cpu']:>6.2f} {r['other_cores']:>6.2f} {r['machine_busy']:>5.0%}  {_waits(r['lock_waits'])}{note}"
        )
        for sample in r["error_samples"]:
            print(f"    error: {sample}")
    print()
    print("share: of the bare Flask app (trivial route) or of the same round's trivial route (the others);")
    print(
        "web cpu / db cpu: CPU ms per request in gunicorn / in the database server (n/a: not on this host);"
    )
    print("client / others: cores used by the load generator / by every other process; busy: all cores;")
    print("lock waits: share of busy database sessions found waiting for a row lock (row: the nob counter)")
    print("or for the NOTIFY commit lock (notify: the job queue's trigger), sampled every 20 ms")
    for c in checks:
        print(f"{'PASS' if c['ok'] else 'MISS'}  {c['check']}: {c['value']}")
