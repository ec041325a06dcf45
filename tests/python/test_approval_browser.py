"""Email validation end to end in a real browser.

A strict Carapace sends its approval mail to an SMTP sink in this process; headless
Chromium (Debian's package, driven by Playwright) opens the link from the captured mail,
checks the page, clicks **I Approve**, and boto3's `certificate_validated` waiter then
succeeds. The page's screenshot is docs/approval-page.png.

Chromium comes from tests/browser/ensure-chromium.sh (Playwright cannot download its own
browsers here). The page's certificate is issued by Carapace's CA for `localhost` only, so
the link (to 127.0.0.1) is opened with certificate errors ignored; the chain itself is
checked in test_approval_certificate_chains_to_carapace_root.
"""

import os
import pathlib
import re
import socket
import socketserver
import ssl
import threading
import time

import pytest

from conftest import CHROMIUM_ARGS, Server

CHROMIUM = "/usr/bin/chromium"
ROOT = pathlib.Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "approval-page.png"
LINK = re.compile(r"https://\S+/approve/[0-9a-f]{32}")


class SmtpSink(socketserver.ThreadingTCPServer):
    """A minimal SMTP server on loopback that keeps every message's DATA."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), SmtpHandler)

    def wait_for(self, count, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} mail(s), got {len(self.messages)}")


class SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 sink ESMTP")
        data, in_data = [], False
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if in_data:
                if line == ".":
                    in_data = False
                    with self.server.lock:
                        self.server.messages.append("\n".join(data))
                    data = []
                    self.reply("250 queued")
                else:
                    data.append(line[1:] if line.startswith("..") else line)
                continue
            verb = line.split(" ", 1)[0].upper()
            if verb == "DATA":
                in_data = True
                self.reply("354 end with .")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            elif verb == "EHLO":
                self.reply("250 sink")
            else:
                self.reply("250 ok")


@pytest.fixture(scope="module")
def smtp():
    sink = SmtpSink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    yield sink
    sink.shutdown()
    sink.server_close()


@pytest.fixture(scope="module")
def mail_server(smtp):
    server = Server(
        dev=False,
        env={
            "CARAPACE_ACM_SMTP_HOST": "127.0.0.1",
            "CARAPACE_ACM_SMTP_PORT": str(smtp.server_address[1]),
            "CARAPACE_ACM_APPROVAL_LISTEN": "127.0.0.1:0",
        },
    )
    yield server
    server.stop()


def approval_address(server, timeout=10):
    """The approval page's `https://host:port` from the server's start-up lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(server.stdout_lines):
            m = re.search(r"carapace approval page on (https://\S+)", line)
            if m:
                return m.group(1)
        time.sleep(0.05)
    raise AssertionError("no approval page line on stdout: " + "".join(server.stdout_lines))


def request_email_certificate(server, domain, sans=()):
    key, secret, account = server.admin_credentials()
    acm = server.client("acm", key=key, secret=secret)
    kwargs = {"SubjectAlternativeNames": list(sans)} if sans else {}
    arn = acm.request_certificate(DomainName=domain, ValidationMethod="EMAIL", **kwargs)["CertificateArn"]
    return acm, arn, account


def test_approval_certificate_chains_to_carapace_root(mail_server):
    """The page is served with a certificate from Carapace's own CA, for `localhost`."""
    import urllib.request

    address = approval_address(mail_server)
    root = urllib.request.urlopen(mail_server.endpoint + "/ca/root.pem").read().decode()
    ctx = ssl.create_default_context(cadata=root)
    host, port = address.removeprefix("https://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            cert = tls.getpeercert()
    assert ("DNS", "localhost") in cert["subjectAltName"]


def test_browser_approves_and_certificate_issues(smtp, mail_server):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium missing: run tests/browser/ensure-chromium.sh")
    from playwright.sync_api import sync_playwright

    already = len(smtp.messages)
    acm, arn, account = request_email_certificate(
        mail_server, "approve.example.com", sans=["www.approve.example.com"]
    )
    # One mail per domain; both go to approve.example.com (ACM strips `www.`).
    mails = smtp.wait_for(already + 2)[already:]
    mail = next(m for m in mails if "Subject: Certificate approval for approve.example.com" in m)
    assert "admin@approve.example.com" in mail and "webmaster@approve.example.com" in mail
    link = LINK.search(mail).group(0)
    assert link.startswith(approval_address(mail_server) + "/approve/")
    other_link = LINK.search(next(m for m in mails if m is not mail)).group(0)

    waiter = acm.get_waiter("certificate_validated")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        try:
            context = browser.new_context(ignore_https_errors=True, viewport={"width": 900, "height": 620})
            page = context.new_page()

            # A forged token: a plain error page, nothing approved.
            forged = page.goto(link[:-32] + "0123456789abcdef0123456789abcdef")
            assert forged.status == 404
            assert "not valid" in page.content()

            response = page.goto(link)
            assert response.status == 200
            assert page.locator("#domain").inner_text() == "approve.example.com"
            assert page.locator("#account").inner_text() == account
            names = page.locator("#names li").all_inner_texts()
            assert sorted(names) == ["approve.example.com", "www.approve.example.com"]
            shot = page.screenshot(full_page=True)
            # Written when absent or asked for: the page shows a fresh ARN every run, and a
            # test run should not leave the working tree dirty.
            if not SCREENSHOT.exists() or os.environ.get("CARAPACE_UPDATE_SCREENSHOT"):
                SCREENSHOT.parent.mkdir(exist_ok=True)
                SCREENSHOT.write_bytes(shot)

            # Opening the page approves nothing (mail scanners follow links).
            assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "PENDING_VALIDATION"
            page.get_by_role("button", name="I Approve").click()
            page.wait_for_load_state()
            assert page.locator("h1").inner_text() == "Approved"

            # One of two domains approved: still pending.
            detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
            assert detail["Status"] == "PENDING_VALIDATION"
            statuses = sorted(o["ValidationStatus"] for o in detail["DomainValidationOptions"])
            assert statuses == ["PENDING_VALIDATION", "SUCCESS"]

            # The link is single-use.
            reused = page.goto(link)
            assert reused.status == 404

            page.goto(other_link)
            page.get_by_role("button", name="I Approve").click()
            page.wait_for_load_state()
            assert page.locator("h1").inner_text() == "Approved"
        finally:
            browser.close()

    waiter.wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    # The waiter succeeds once every domain is validated; issuance follows in a moment.
    deadline = time.monotonic() + 15
    while acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "PENDING_VALIDATION":
        assert time.monotonic() < deadline, "validated but not issued"
        time.sleep(0.2)
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "ISSUED"
