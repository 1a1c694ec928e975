"""The embedded server (pdam/infra/embedded.py) started by several processes at once."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.factories import ROOT

START = "from pdam.infra import embedded; print(embedded.start({data!r}, database='shared'))"


def test_processes_starting_on_a_new_data_dir_at_once_share_one_server():
    """``make test`` runs on several processes that each start the suite's server: on a fresh
    clone they reach the missing data folder together, and each must get the one server
    (before the lock, the second one's initdb failed with FileExistsError)."""
    # A folder under /tmp, not pytest's: as root, pgserver runs the server as an unprivileged
    # user, who must reach the folder (pytest keeps its own at mode 0700).
    folder = Path(tempfile.mkdtemp(prefix="pdam-embedded-race-"))
    data = folder / "instance" / "pgdata"
    try:
        starts = [
            subprocess.Popen(
                [sys.executable, "-c", START.format(data=str(data))],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        results = [p.communicate(timeout=180) for p in starts]
        assert [p.returncode for p in starts] == [0, 0, 0], [err[-2000:] for _, err in results]
        urls = {out.strip().splitlines()[-1] for out, _ in results}
        assert len(urls) == 1 and "/shared?" in urls.pop()
    finally:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "embedded_stop.py"), str(data)], timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
