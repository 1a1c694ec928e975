"""bench/peak.py's picture: latency p50/p99 and the final callback's delay against the rate, one
line style per run (``--compare`` draws earlier runs beside this one)."""

from __future__ import annotations

from pathlib import Path


def plot(runs: list[dict], path: Path, http_p99_s: float, callback_p99_s: float) -> None:
    """Draw ``runs`` (bench/peak.py's --json documents) with the criteria as grey lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (http, cb) = plt.subplots(1, 2, figsize=(12, 4.5))
    for n, run in enumerate(runs):
        rows = run["rows"]
        rates = [r["rate"] for r in rows]
        style = ["-", "--", ":", "-."][n % 4]
        label = run["info"]["label"]
        for key, colour in (("inquiry", "tab:blue"), ("payment", "tab:orange")):
            http.plot(
                rates,
                [r[f"{key}_p99_ms"] for r in rows],
                style,
                color=colour,
                marker="o",
                label=f"{key} p99 ({label})",
            )
            http.plot(
                rates,
                [r[f"{key}_p50_ms"] for r in rows],
                style,
                color=colour,
                alpha=0.4,
                label=f"{key} p50 ({label})",
            )
        cb.plot(
            rates,
            [r["callback_p99_ms"] / 1000 for r in rows],
            style,
            color="tab:red",
            marker="o",
            label=f"p99 ({label})",
        )
        cb.plot(
            rates,
            [r["callback_p50_ms"] / 1000 for r in rows],
            style,
            color="tab:red",
            alpha=0.4,
            label=f"p50 ({label})",
        )
    http.axhline(http_p99_s * 1000, color="grey", lw=0.8)
    cb.axhline(callback_p99_s, color="grey", lw=0.8)
    http.set(
        yscale="log",
        xlabel="payments/s (and 2x inquiries/s)",
        ylabel="ms from when due",
        title="inquiry and payment latency",
    )
    cb.set(
        yscale="log", xlabel="payments/s", ylabel="seconds from the payment", title="final callback's delay"
    )
    http.legend(fontsize=7)
    cb.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
