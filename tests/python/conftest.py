"""Starts the real `carapace` binary on a free loopback port for the boto3 / AWS CLI tests."""

import configparser
import os
import re
import shutil
import subprocess
import tempfile
import threading

import boto3
import botocore.config
import pytest

BIN = os.environ.get("CARAPACE_BIN", "target/debug/carapace")
REGION = "us-east-1"


class Server:
    """A running carapace process with its data directory."""

    def __init__(self, dev, extra_args=(), env=None):
        self.data_dir = tempfile.mkdtemp(prefix="carapace-py-")
        args = [BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir, *extra_args]
        if dev:
            args.append("--dev")
        full_env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"), **(env or {}))
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
        self.stdout_lines = []
        self.endpoint = None
        for line in self.proc.stdout:
            self.stdout_lines.append(line)
            m = re.search(r"carapace listening on (http://\S+)", line)
            if m:
                self.endpoint = m.group(1)
                break
        if self.endpoint is None:
            raise RuntimeError("carapace did not start: " + self.proc.stderr.read())
        # Keep draining both pipes so the server never blocks on a full pipe.
        threading.Thread(target=self._drain, args=(self.proc.stdout, self.stdout_lines), daemon=True).start()
        self.stderr_lines = []
        threading.Thread(target=self._drain, args=(self.proc.stderr, self.stderr_lines), daemon=True).start()

    @staticmethod
    def _drain(pipe, sink):
        for line in pipe:
            sink.append(line)

    def admin_credentials(self):
        """(access key id, secret, account) from the first-start credentials file."""
        cp = configparser.ConfigParser()
        cp.read(os.path.join(self.data_dir, "admin-credentials"))
        section = cp["carapace-admin"]
        with open(os.path.join(self.data_dir, "admin-credentials")) as f:
            account = re.search(r"account (\d{12})", f.read()).group(1)
        return section["aws_access_key_id"], section["aws_secret_access_key"], account

    def client(self, service, key="123456789012", secret="test-secret", region=REGION, **config):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=botocore.config.Config(retries={"max_attempts": 1}, **config),
        )

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def dev_server():
    server = Server(dev=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def strict_server():
    server = Server(dev=False)
    yield server
    server.stop()
