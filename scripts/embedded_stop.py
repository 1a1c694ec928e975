"""Stop the embedded PostgreSQL servers of these data folders, if running (``make stop``,
``make clean``):

    python3 scripts/embedded_stop.py instance/pgdata instance/test-pgdata

Standard library only. A fast shutdown is PostgreSQL's SIGINT to the postmaster, whose pid is
the first line of ``postmaster.pid``; the file is gone once the server has stopped.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def stop(data_dir: Path, wait: float = 30.0) -> bool:
    """Stop the server of ``data_dir``; return whether one was running."""
    pid_file = data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGINT)
    except (OSError, ValueError, IndexError):
        return False  # no server there (or a stale file of one long gone)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    raise SystemExit(f"the PostgreSQL server of {data_dir} (pid {pid}) did not stop within {wait:.0f} s")


def main(argv: list[str]) -> int:
    for name in argv[1:]:
        if stop(Path(name)):
            print(f"stopped the PostgreSQL server of {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
