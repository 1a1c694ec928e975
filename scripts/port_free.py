"""Exit 1 with a message when PORT is taken (``make run`` checks it before anything else).

    python3 scripts/port_free.py 5000

Standard library only: it runs before the virtualenv exists. gunicorn binds 0.0.0.0:PORT
(gunicorn.conf.py), so that is what is tried.
"""

from __future__ import annotations

import socket
import sys


def taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def main(argv: list[str]) -> int:
    port = int(argv[1])
    if taken(port):
        print(
            f"port {port} is taken: is `make run` already running (stop it with Ctrl-C)? "
            f"Or run on another port: PORT={port + 1} make run",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
