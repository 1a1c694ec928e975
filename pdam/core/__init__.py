"""The payment domain: plain functions over a connection, settings and ``now``.

No web framework, no schema library, no HTTP and no protocol's field names:
the edges (``pdam.peti``, ``pdam.snap``) translate their wire to these
functions, and the job server (``jobs``) runs the same functions.
"""
