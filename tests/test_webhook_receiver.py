"""The demo receiver (scripts/webhook_receiver.py) accepts exactly what the service signs."""

from __future__ import annotations

import importlib.util
import time

from pdam.peti import callbacks
from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("webhook_receiver", ROOT / "scripts" / "webhook_receiver.py")
receiver = importlib.util.module_from_spec(spec)
spec.loader.exec_module(receiver)


def test_receiver_verifies_the_service_signature():
    body, now = b'{"status":"accepted","code":202}', int(time.time())
    header = callbacks.signature("s3cret", now, body)  # the X-Signature value the service sends
    assert receiver.verify("s3cret", header, body)
    assert not receiver.verify("other", header, body)
    assert not receiver.verify("s3cret", header, body + b" ")
    assert not receiver.verify("s3cret", header, body, now=now + 301)  # a replay, too old
    assert not receiver.verify("s3cret", "garbage", body)
