"""A distribution in a real browser: headless Chromium (Debian's, driven by Playwright) loads
a Lightsail distribution from Carapace's edge over HTTPS, verifying the chain against
Carapace's root, which is the only extra trust anchor in the browser's NSS database (no
certificate errors are ignored). The page's screenshot is docs/edge-distribution.png.
"""

import http.server
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading

import pytest

from conftest import CHROMIUM_ARGS, Server
from test_lightsail import ls, new_distribution, wait_deployed

CHROMIUM = "/usr/bin/chromium"
ROOT = pathlib.Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "edge-distribution.png"
PAGE = b"""<!doctype html><html><head><title>Served by Carapace</title>
<style>body{font-family:sans-serif;margin:3em;background:#f4f7f5}h1{color:#14532d}</style></head>
<body><h1>Hello from the origin</h1><p>This page came through a Lightsail distribution on
Carapace's edge, over HTTPS with a certificate from Carapace's CA.</p></body></html>"""


class Origin(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):
        if self.path == "/":  # (Chromium also asks for /favicon.ico)
            Origin.hits += 1
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("cache-control", "max-age=300")
        self.send_header("content-length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def origin():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_chromium_loads_a_distribution_trusting_only_carapaces_root(origin):
    if not os.path.exists(CHROMIUM) or shutil.which("certutil") is None:
        pytest.skip("Chromium or certutil missing: run tests/browser/ensure-chromium.sh")
    from playwright.sync_api import sync_playwright

    server = Server(dev=True, env={"CARAPACE_LIGHTSAIL_ORIGINS": f"web=http://127.0.0.1:{origin}"})
    try:
        c = ls(server)
        domain = new_distribution(c, "browser")["distribution"]["domainName"]
        wait_deployed(c, "browser")
        https_port = server.edge_https.rsplit(":", 1)[1]

        # A browser profile whose NSS database trusts Carapace's root and nothing else extra.
        home = tempfile.mkdtemp(prefix="carapace-chromium-")
        nssdb = pathlib.Path(home, ".pki", "nssdb")
        nssdb.mkdir(parents=True)
        subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
        root = pathlib.Path(server.data_dir, "ca-root.pem")
        subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "carapace", "-i", str(root)], check=True)

        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                env=dict(os.environ, HOME=home),
                args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {domain} 127.0.0.1"],
            )
            try:
                context = browser.new_context(viewport={"width": 900, "height": 420})
                page = context.new_page()
                url = f"https://{domain}:{https_port}/"
                first = page.goto(url)
                assert first.status == 200
                assert first.headers["x-cache"] == "Miss from carapace"
                assert page.title() == "Served by Carapace"
                assert first.security_details()["subjectName"] == "*.cdn.carapace.internal"
                # Another query string: a new request for the browser, the same cache key
                # for the edge (query strings are not forwarded by default).
                again = page.goto(url + "?again")
                assert again.headers["x-cache"] == "Hit from carapace"
                assert Origin.hits == 1, "the second load came from the edge's cache"
                shot = page.screenshot(full_page=True)
                if not SCREENSHOT.exists() or os.environ.get("CARAPACE_UPDATE_SCREENSHOT"):
                    SCREENSHOT.write_bytes(shot)
            finally:
                browser.close()
        shutil.rmtree(home, ignore_errors=True)
    finally:
        server.stop()
