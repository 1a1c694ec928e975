"""``/docs`` (pdam/web/docs.py): local assets only, and the page renders in a real headless
Chromium with no internet access.

The app runs on a loopback port; Chromium resolves every other host name to
nothing (``--host-resolver-rules``), so a page that needed a CDN would not
render. Skipped when no Chromium binary is installed (CI installs Debian's
``chromium`` package).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading

import pytest
from werkzeug.serving import make_server


def test_docs_page_uses_local_assets_only(client):
    res = client.get("/docs")
    assert res.status_code == 200
    assert res.mimetype == "text/html"
    html = res.get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(u.startswith("/docs/") for u in urls), urls
    assert 'url: "/openapi.json"' in html
    assert "validatorUrl: null" in html  # no call to the public validator
    for url in urls:
        with client.get(url) as asset:  # a file response: close it
            assert asset.status_code == 200, url
            assert len(asset.data) > 0


@pytest.mark.parametrize(
    "name",
    [
        "index.html",
        "swagger-initializer.js",
        "../__init__.py",
        "nope.js",
        "%2e%2e/%2e%2e/pdam/infra/settings.py",
    ],
)
def test_docs_serves_only_its_assets(client, name):
    res = client.get(f"/docs/{name}")
    assert res.status_code == 404
    assert res.json["error"] == 404


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str | None:
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return shutil.which(explicit)
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


@pytest.fixture
def browser() -> str:
    path = chromium()
    if path is None:
        pytest.skip("no chromium binary (apt-get install chromium, or set CHROMIUM=/path/to/it)")
    return path


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def run_browser(browser: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        # Offline: every host name except the loopback address resolves to nothing.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--virtual-time-budget=20000",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def requested_routes(caplog) -> set[str]:
    return {f"{r.method} {r.route} {r.status}" for r in caplog.records if r.name == "pdam.request"}


def test_docs_render_offline_in_headless_chromium(browser, live_server, client, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pdam.request")
    doc = client.get("/openapi.json").json
    res = run_browser(browser, tmp_path, "--dump-dom", f"{live_server}/docs")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    # Swagger UI ran: the API title and one block per operation, with its path and method.
    assert "swagger-ui" in dom
    assert doc["info"]["title"] in dom, dom[-2000:]
    for path, ops in doc["paths"].items():
        assert f'data-path="{path}"' in dom, path
        for method in ops:
            assert f"opblock-{method}" in dom, (method, path)
    assert "Failed to load API definition" not in dom
    # The page's files and the document came from this service.
    seen = requested_routes(caplog)
    assert {"GET /docs 200", "GET /docs/<path:filename> 200", "GET /openapi.json 200"} <= seen, seen


def test_docs_screenshot(browser, live_server, tmp_path):
    shot = tmp_path / "docs.png"
    res = run_browser(
        browser, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", f"{live_server}/docs"
    )
    assert res.returncode == 0, res.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a rendered page, not a blank one (a blank 1280x1600 PNG is a few KB)
    keep = os.environ.get("DOCS_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
