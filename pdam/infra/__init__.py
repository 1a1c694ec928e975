"""Infrastructure: settings, the clock, database engines and transactions, the queue,
named SQL, migrations, the embedded PostgreSQL, JSON logs, the guarded HTTP client."""
