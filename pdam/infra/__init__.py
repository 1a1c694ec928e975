"""Infrastructure: settings, the clock, database engines and transactions, the core's port
to PostgreSQL (``port.py``, sync and async), the queue, named SQL, migrations, the
embedded PostgreSQL, JSON logs, the guarded HTTP client."""
