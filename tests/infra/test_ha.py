"""scripts/ha.py without a cluster: the URL the service gets, each node's Patroni settings,
and how members' processes are found (by their listening ports). The cluster itself is
started, queried, restarted and stopped in tests/drills/test_ha_cluster.py (make drill)."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from pdam.infra.settings import sqlalchemy_url
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import ha  # noqa: E402

STATE = {
    "bin_dir": "/usr/lib/postgresql/15/bin",
    "etcd": {"client": 2379, "peer": 2380},
    "nodes": {"node1": {"pg": 5433, "api": 8008}, "node2": {"pg": 5434, "api": 8009}},
}


def test_the_service_reaches_the_leader_by_a_multi_host_read_write_url():
    url = ha.database_url(STATE)
    assert url == "postgresql://postgres@127.0.0.1:5433,127.0.0.1:5434/pdam?target_session_attrs=read-write"
    # what the service makes of it: libpq's host list, read-write
    assert sqlalchemy_url(url) == (
        "postgresql+psycopg://postgres@/pdam?host=127.0.0.1:5433&host=127.0.0.1:5434"
        "&target_session_attrs=read-write"
    )


def test_each_node_is_synchronous_not_strict_with_failsafe_on_etcd3(tmp_path):
    path = ha._node_config(tmp_path, STATE, "node2")
    config = json.loads(Path(path).read_text())
    dcs = config["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True and dcs["synchronous_mode_strict"] is False
    assert dcs["failsafe_mode"] is True
    # Patroni's own rule: the leader key outlives a loop and two retries
    assert dcs["ttl"] >= dcs["loop_wait"] + 2 * dcs["retry_timeout"]
    assert config["etcd3"] == {"hosts": "127.0.0.1:2379"}  # etcd 3.4's v2 API is off
    assert config["restapi"]["connect_address"] == "127.0.0.1:8009"  # failsafe calls it
    assert config["postgresql"]["listen"] == "127.0.0.1:5434"
    assert all(" 127.0.0.1/32 " in line for line in config["postgresql"]["pg_hba"] if line.startswith("host"))


def test_a_process_is_found_by_its_listening_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert ha.pids_by_port([port]) == {port: os.getpid()}
    assert ha.pids_by_port([port]) == {}
