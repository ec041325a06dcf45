"""A loopback HTTP router for running moto's own test suites against Carapace.

moto's tests in server mode send every client to one endpoint (TEST_SERVER_MODE_ENDPOINT)
and POST /moto-api/reset before each test. Carapace speaks ACM, Directory Service and
Lightsail only, while moto's DS tests also create VPCs and subnets through EC2. This router
listens on 127.0.0.1 and sends

  - requests signed for acm, acm-pca, ds or lightsail (the service of the SigV4 credential scope, in
    the Authorization header or the X-Amz-Credential query parameter; unsigned ones by their
    X-Amz-Target prefix) to `carapace serve --dev`,
  - everything else to a `moto_server` it starts beside it,
  - POST /moto-api/reset to both: Carapace is stopped and started again on a fresh data
    directory (it has no reset route), and the reset is forwarded to moto.

Requests are forwarded byte for byte with their Host header, so SigV4 signatures made for
the router's address verify at Carapace. It prints `moto-router listening on http://ADDR`
once both servers answer. Standard library only; run it with the venv's Python.

  python3 moto_router.py --carapace BIN --moto-server VENV/bin/moto_server --work DIR
"""

import argparse
import http.client
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

# Services Carapace answers, by SigV4 signing name and by X-Amz-Target prefix.
CARAPACE_SERVICES = {"acm", "acm-pca", "ds", "lightsail"}
CARAPACE_TARGETS = ("CertificateManager.", "DirectoryService_20150416.", "Lightsail_20161128.")
CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")
# Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded; the body is re-framed with
# Content-Length.
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "content-length",
}
START_TIMEOUT_S = 120


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_of(handler):
    """The SigV4 service a request is signed for, or None."""
    match = CREDENTIAL.search(handler.headers.get("Authorization", ""))
    if match:
        return match.group(1)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
    for credential in query.get("X-Amz-Credential", []):
        parts = credential.split("/")
        if len(parts) == 5:
            return parts[3]
    return None



def terminate(proc):
    """Stops a child: SIGTERM, then SIGKILL after 20 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

class Carapace:
    """`carapace serve --dev` on a fresh data directory, restartable."""

    def __init__(self, binary, work):
        self.binary = binary
        self.work = work
        self.proc = None
        self.dir = None
        self.host = None
        self.generation = 0

    def start(self):
        self.generation += 1
        self.dir = os.path.join(self.work, f"carapace-{self.generation}")
        os.makedirs(self.dir)
        log_path = os.path.join(self.dir, "server.log")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        env.update({
            # Directories are Active at once, as in moto.
            "CARAPACE_DS_STAGE_DELAY_MS": "0",
            "CARAPACE_ACM_APPROVAL_LISTEN": "127.0.0.1:0",
            "CARAPACE_EDGE_HTTPS_LISTEN": "127.0.0.1:0",
            "CARAPACE_EDGE_HTTP_LISTEN": "127.0.0.1:0",
        })
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, "serve", "--dev", "--listen", "127.0.0.1:0",
                 "--data-dir", os.path.join(self.dir, "data")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        pattern = re.compile(rb"carapace listening on http://(\S+)")
        while time.monotonic() < deadline:
            with open(log_path, "rb") as log:
                match = pattern.search(log.read())
            if match:
                self.host = match.group(1).decode()
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        with open(log_path, "rb") as log:
            sys.stderr.write(log.read().decode(errors="replace"))
        raise RuntimeError(f"carapace did not start (log {log_path})")

    def stop(self, keep_dir=False):
        if self.proc is not None:
            terminate(self.proc)
            self.proc = None
        if self.dir is not None and not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None


class Moto:
    """A moto_server on a free loopback port."""

    def __init__(self, moto_server, work):
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = open(os.path.join(work, "moto.log"), "wb")
        self.proc = subprocess.Popen(
            [moto_server, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("moto_server exited at start (see moto.log)")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto_server did not start")

    def stop(self):
        terminate(self.proc)
        self.log.close()


def forward(host, method, path, headers, body):
    """Send one request upstream; returns (status, reason, headers, body)."""
    name, port = host.rsplit(":", 1)
    conn = http.client.HTTPConnection(name, int(port), timeout=300)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for key, value in headers:
            if key.lower() not in HOP_BY_HOP:
                conn.putheader(key, value)
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if body else None)
        response = conn.getresponse()
        data = response.read()
        return response.status, response.reason, response.getheaders(), data
    finally:
        conn.close()


class Router(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, carapace, moto):
        super().__init__(address, Handler)
        self.carapace = carapace
        self.moto = moto
        # Readers (requests to Carapace) share it; a reset takes it alone.
        self.lock = threading.Condition()
        self.active = 0
        self.resetting = False

    def acquire(self):
        with self.lock:
            while self.resetting:
                self.lock.wait()
            self.active += 1
            return self.carapace.host

    def release(self):
        with self.lock:
            self.active -= 1
            self.lock.notify_all()

    def reset(self):
        with self.lock:
            while self.resetting:
                self.lock.wait()
            self.resetting = True
            while self.active:
                self.lock.wait()
        try:
            self.carapace.stop()
            self.carapace.start()
        finally:
            with self.lock:
                self.resetting = False
                self.lock.notify_all()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 — the base class's name
        pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def handle_any(self):
        body = self.read_body()
        headers = list(self.headers.items())
        server = self.server
        path = urllib.parse.urlsplit(self.path).path
        try:
            if path == "/moto-api/reset" and self.command == "POST":
                server.reset()
                answer = forward(server.moto.host, self.command, self.path, headers, body)
            elif self.to_carapace():
                host = server.acquire()
                try:
                    answer = forward(host, self.command, self.path, headers, body)
                finally:
                    server.release()
            else:
                answer = forward(server.moto.host, self.command, self.path, headers, body)
        except Exception as error:  # the router answers rather than drop the connection
            message = f"moto-router: {type(error).__name__}: {error}\n".encode()
            answer = (502, "Bad Gateway", [("Content-Type", "text/plain")], message)
        status, reason, response_headers, data = answer
        self.send_response(status, reason)
        for key, value in response_headers:
            if key.lower() not in HOP_BY_HOP and key.lower() not in ("server", "date"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def to_carapace(self):
        service = service_of(self)
        if service is not None:
            return service in CARAPACE_SERVICES
        return self.headers.get("X-Amz-Target", "").startswith(CARAPACE_TARGETS)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--carapace", required=True, help="the carapace binary")
    parser.add_argument("--moto-server", required=True, help="the venv's moto_server")
    parser.add_argument("--work", required=True, help="a directory for data and logs")
    parser.add_argument("--port", type=int, default=0, help="the router's port (default: any)")
    args = parser.parse_args()

    moto = Moto(args.moto_server, args.work)
    carapace = Carapace(args.carapace, args.work)

    def stop(*_, code=0):
        carapace.stop(keep_dir=True)
        moto.stop()
        os._exit(code)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        carapace.start()
        router = Router(("127.0.0.1", args.port), carapace, moto)
    except Exception as error:
        print(f"moto-router: {error}", file=sys.stderr)
        stop(code=1)
    print(f"moto-router listening on http://127.0.0.1:{router.server_address[1]}", flush=True)
    try:
        router.serve_forever()
    finally:
        stop()


if __name__ == "__main__":
    main()
