"""HTTP validation for real (`ManagedBy=CLOUDFRONT`, `ValidationMethod=HTTP`).

The validation worker fetches `RedirectFrom` — `http://<domain>/.well-known/pki-validation/
<token>.txt`, port 80 as in ACM unless `acm.http_validation_port` says otherwise — resolving
the domain through the configured name servers. Here an authoritative DNS server (dnslib,
in this process) maps the domain to a random 127.x.y.z address, and a tiny web server on a
free port of that address (the server's `acm.http_validation_port`, so no privilege is
needed) plays the domain's site: first without the file, then redirecting it to
`RedirectTo`, which Carapace itself serves.
"""

import http.server
import random
import threading
import time
import urllib.request

import botocore.exceptions
import pytest
from dnslib import QTYPE, RR, A, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from conftest import Server

DOMAIN = "cdn.httpval.example.com"


class Zone(BaseResolver):
    """A records from a dict the test fills; NODATA for everything else (no CAA: allowed)."""

    def __init__(self):
        self.addresses = {}

    def resolve(self, request, handler):
        reply = request.reply()
        reply.header.aa = 1
        qname = str(request.q.qname).lower()
        if QTYPE[request.q.qtype] == "A" and qname in self.addresses:
            reply.add_answer(RR(DNSLabel(qname), QTYPE.A, rdata=A(self.addresses[qname]), ttl=0))
        return reply


class Site(http.server.ThreadingHTTPServer):
    """The domain's web site: 404 until `redirects` maps a path to a Location."""

    daemon_threads = True

    def __init__(self, address):
        self.redirects = {}
        self.hits = []
        super().__init__(address, SiteHandler)


class SiteHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits.append((self.headers.get("Host"), self.path))
        location = self.server.redirects.get(self.path)
        if location is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
        else:
            self.send_response(301)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    # A random loopback address: the domain resolves to it and nothing else listens there.
    ip = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    server = Site((ip, 0))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, ip
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def http_server(site):
    _, ip = site
    zone = Zone()
    zone.addresses[DOMAIN + "."] = ip
    dns = DNSServer(zone, port=0, address="127.0.0.1", logger=DNSLogger("-request,-reply,-truncated,-error"))
    dns.start_thread()
    server = Server(
        dev=False,
        env={
            "CARAPACE_ACM_NAME_SERVERS": f'["127.0.0.1:{dns.server.server_address[1]}"]',
            "CARAPACE_ACM_VALIDATION_RETRY_MIN_MS": "200",
            "CARAPACE_ACM_VALIDATION_RETRY_MAX_MS": "1000",
            "CARAPACE_ACM_DNS_TIMEOUT_MS": "1000",
            "CARAPACE_ACM_APPROVAL_LISTEN": "127.0.0.1:0",
            "CARAPACE_ACM_HTTP_VALIDATION_PORT": str(site[0].server_address[1]),
        },
    )
    yield server
    server.stop()
    dns.stop()


def test_http_validation_follows_the_redirect_to_carapace(site, http_server):
    web, ip = site
    key, secret, account = http_server.admin_credentials()
    acm = http_server.client("acm", key=key, secret=secret)
    arn = acm.request_certificate(DomainName=DOMAIN, ValidationMethod="HTTP", ManagedBy="CLOUDFRONT")[
        "CertificateArn"
    ]
    redirect = acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"][0][
        "HttpRedirect"
    ]
    prefix = f"http://{DOMAIN}/.well-known/pki-validation/"
    assert redirect["RedirectFrom"].startswith(prefix)
    path = redirect["RedirectFrom"][len(f"http://{DOMAIN}") :]
    assert redirect["RedirectTo"] == f"{http_server.endpoint}/acm-validations/{account}{path}"

    # RedirectTo serves the expected content in clear; malformed URLs are 404s.
    content = urllib.request.urlopen(redirect["RedirectTo"]).read().decode()
    assert len(content) == 64 and all(c in "0123456789abcdef" for c in content)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{http_server.endpoint}/acm-validations/{account}/.well-known/pki-validation/x.txt")
    assert e.value.code == 404

    # No file on the site yet: the worker asks for it, and the request stays pending.
    waiter = acm.get_waiter("certificate_validated")
    with pytest.raises(botocore.exceptions.WaiterError):
        waiter.wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    assert (DOMAIN, path) in web.hits, "the worker fetched RedirectFrom from the domain's address"

    # A redirect to the wrong content (another account's URL) does not validate.
    web.redirects[path] = redirect["RedirectTo"].replace(f"/{account}/", "/000000000000/")
    with pytest.raises(botocore.exceptions.WaiterError):
        waiter.wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "PENDING_VALIDATION"

    # The site redirects to Carapace: validated and issued.
    web.redirects[path] = redirect["RedirectTo"]
    waiter.wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    detail = wait_issued(acm, arn)
    assert detail["DomainValidationOptions"][0]["ValidationStatus"] == "SUCCESS"


def wait_issued(acm, arn, timeout=15):
    """The waiter succeeds once every domain is validated; issuance follows in a moment."""
    deadline = time.monotonic() + timeout
    while True:
        detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        if detail["Status"] != "PENDING_VALIDATION" or time.monotonic() > deadline:
            assert detail["Status"] == "ISSUED", detail
            return detail
        time.sleep(0.2)
