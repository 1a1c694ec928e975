"""gunicorn settings, from the same environment variables as the app."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "1"))
keepalive = 5
timeout = 30
graceful_timeout = 20
# Build the app once in the master (starts/reuses the embedded database once);
# each worker gets fresh connections because engines connect lazily after fork.
preload_app = True
accesslog = None
# No shared control socket: several web processes may run on one host.
control_socket_disable = True


def post_fork(server, worker):
    from wsgi import app

    app.extensions["pdam.db"].dispose()
