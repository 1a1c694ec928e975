"""``@doc`` and ``paths``: each route's operation sits at its view (pdam/web/apidoc.py)."""

from __future__ import annotations

import pytest
from flask import Flask

from pdam.web import apidoc


def test_paths_collects_each_views_operation_per_method():
    app = Flask(__name__)

    @app.route("/things/<int:thing_id>", methods=["GET", "DELETE"])
    @apidoc.doc("A thing", "One thing.", {200: apidoc.ok("The thing.", {"type": "object"})}, tag="t")
    def thing(thing_id):
        return {}

    paths = apidoc.paths(app)
    assert set(paths) == {"/things/{thing_id}"}
    ops = paths["/things/{thing_id}"]
    assert set(ops) == {"get", "delete"}
    assert ops["get"]["summary"] == "A thing" and ops["get"]["parameters"] == ["X-Request-Id"]
    ops["get"]["summary"] = "changed"  # a copy: the view's operation stays as written
    assert apidoc.paths(app)["/things/{thing_id}"]["get"]["summary"] == "A thing"


def test_a_route_without_doc_is_an_error():
    app = Flask(__name__)

    @app.get("/undocumented")
    def undocumented():
        return {}

    with pytest.raises(ValueError, match="/undocumented"):
        apidoc.paths(app)
