"""``python -m jobs``: the worker, restarted when it dies.

The worker outlives a lost database by itself (``jobs/worker.py`` starts its run
loop again in-process), but a process can still die (a crash, the OOM killer);
neither a bare Procfile nor honcho restarts a process, so this entry point does:
it runs the worker as a child process and starts it again (with a short backoff)
until it is told to stop. SIGTERM/SIGINT are passed to the child for a graceful stop.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

EXIT_CONFIG = 78  # jobs.worker.EXIT_CONFIG (not imported: this process stays free of the app)


def worker_command() -> list[str]:
    return [sys.executable, "-m", "jobs.worker"]


def main() -> int:
    stopping = False
    child: subprocess.Popen | None = None

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True
        if child and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    backoff = 1.0
    while not stopping:
        started = time.monotonic()
        child = subprocess.Popen(worker_command())
        code = child.wait()
        if stopping:
            return 0
        if code == EXIT_CONFIG:  # a wrong or missing SECRET_KEYS: restarting cannot help
            print(
                "worker cannot start (configuration, see its log); not restarting",
                file=sys.stderr,
                flush=True,
            )
            return code
        backoff = 1.0 if time.monotonic() - started > 60 else min(backoff * 2, 30.0)
        print(f"worker exited with {code}; restarting in {backoff:.0f}s", file=sys.stderr, flush=True)
        time.sleep(backoff)
    return 0


if __name__ == "__main__":
    sys.exit(main())
