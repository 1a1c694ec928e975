"""The JSON line formatter (pdam/infra/logs.py): what each line holds, in which order."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

from pdam.infra import logs


def record(msg="paid %s", args=("é",), exc_info=None, **extra) -> logging.LogRecord:
    logger = logging.getLogger("pdam.test")
    return logger.makeRecord("pdam.test", logging.WARNING, __file__, 1, msg, args, exc_info, extra=extra)


def test_a_line_is_time_level_logger_message_then_the_record_fields():
    rec = record(payment_id=7, outcome="accepted")
    rec.created, rec.msecs = 1_780_000_000.5, 500.0
    line = logs.JsonFormatter().format(rec)
    assert "\n" not in line and "é" in line  # one line, UTF-8 as it is
    fields = json.loads(line)
    assert list(fields) == ["time", "level", "logger", "message", "payment_id", "outcome"]
    assert fields["time"] == logging.Formatter().formatTime(rec)  # "YYYY-MM-DD HH:MM:SS,mmm"
    assert fields["time"].endswith(",500")
    assert fields["level"] == "WARNING" and fields["logger"] == "pdam.test"
    assert fields["message"] == "paid é"
    assert fields["payment_id"] == 7 and fields["outcome"] == "accepted"


def test_an_exception_is_one_text_field_and_odd_values_are_text():
    try:
        raise ValueError("boom")
    except ValueError:
        rec = record(
            exc_info=sys.exc_info(), at=dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC), thing=object()
        )
    fields = json.loads(logs.JsonFormatter().format(rec))
    assert list(fields)[4] == "exc_info"
    assert fields["exc_info"].startswith("Traceback") and "ValueError: boom" in fields["exc_info"]
    assert fields["at"] == "2026-12-04T10:00:00+00:00"
    assert fields["thing"].startswith("<object object")


def test_private_attributes_and_the_standard_ones_stay_out():
    rec = record()
    rec._hidden = "x"
    fields = json.loads(logs.JsonFormatter().format(rec))
    assert set(fields) == {"time", "level", "logger", "message"}


def test_the_context_filter_adds_request_fields_a_call_does_not_override():
    with logs.bound(request_id="r1", partner="01"):
        rec = record(partner="02")
        logs.ContextFilter().filter(rec)
    fields = json.loads(logs.JsonFormatter().format(rec))
    assert fields["request_id"] == "r1" and fields["partner"] == "02"


def test_procrastinate_s_routine_job_lines_are_left_out_its_retries_and_failures_kept(capsys):
    logs.configure()
    worker = logging.getLogger("procrastinate.worker")
    named = worker.getChild("worker-1")  # a named worker's own logger
    named.info("Starting job posting.post_payment[1]()", extra={"action": "start_job"})
    worker.info("Job posting.post_payment[1]() ended with status: Success", extra={"action": "job_success"})
    worker.info(
        "Job posting.post_payment[2]() ended with status: Error, to retry",
        extra={"action": "job_error_retry"},
    )
    worker.error("Job posting.post_payment[3]() ended with status: Error", extra={"action": "job_error"})
    named.info("Starting worker on all queues", extra={"action": "start_worker"})
    logging.getLogger("jobs.posting").info("posted", extra={"action": "job_success"})  # ours: kept
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["logger"], line["action"]) for line in lines] == [
        ("procrastinate.worker", "job_error_retry"),
        ("procrastinate.worker", "job_error"),
        ("procrastinate.worker.worker-1", "start_worker"),
        ("jobs.posting", "job_success"),
    ]
