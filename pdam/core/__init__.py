"""The payment domain: functions over a connection, settings and ``now``.

Each function that touches the database is written once, as a plan on the port
(``pdam/infra/port.py``): called with a SQLAlchemy connection it runs now, with an
async psycopg connection it is awaited. Functions return frozen records
(``records.py``), never table rows; sealed secrets are no field of them. Events are
rendered by the edge that took the callback, through ``events.py``.

No web framework, no schema library, no HTTP and no protocol's field names:
the edges (``pdam.peti``, ``pdam.snap``) translate their wire to these
functions, and the job server (``jobs``) runs the same functions.
"""
