"""Starts the real `carapace` binary on a free loopback port for the boto3 / AWS CLI tests."""

import configparser
import os
import re
import shutil
import subprocess
import tempfile
import threading

import copy
import json

import boto3
import botocore.config
import botocore.session
import pytest

BIN = os.environ.get("CARAPACE_BIN", "target/debug/carapace")
REGION = "us-east-1"
MODELS = os.path.join(os.path.dirname(__file__), "..", "..", "models")


class Server:
    """A running carapace process with its data directory."""

    def __init__(self, dev, extra_args=(), env=None):
        self.data_dir = tempfile.mkdtemp(prefix="carapace-py-")
        args = [BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir, *extra_args]
        if dev:
            args.append("--dev")
        # Several servers run at once: give each its own free approval-page port.
        full_env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        full_env["CARAPACE_ACM_APPROVAL_LISTEN"] = "127.0.0.1:0"
        full_env["CARAPACE_EDGE_HTTPS_LISTEN"] = "127.0.0.1:0"
        full_env["CARAPACE_EDGE_HTTP_LISTEN"] = "127.0.0.1:0"
        full_env.update(env or {})
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
        self.stdout_lines = []
        self.endpoint = None
        self.edge_https = self.edge_http = None
        for line in self.proc.stdout:
            self.stdout_lines.append(line)
            e = re.search(r"carapace edge on https://(\S+) and http://(\S+)", line)
            if e:
                self.edge_https, self.edge_http = e.group(1), e.group(2)
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

    def ds_client(self, protocol, key="123456789012", secret="test-secret", region=REGION):
        """A boto3 Directory Service client forced to one wire protocol.

        botocore lists DS as `["smithy-rpc-v2-cbor", "json"]` but prefers `json` when both
        are offered, so each protocol is tested through a copy of the model that offers only
        that one (`smithy-rpc-v2-cbor` is what newer SDKs send; `json` what older ones do).
        """
        loader_session = botocore.session.get_session()
        model = copy.deepcopy(loader_session.get_component("data_loader").load_service_model("ds", "service-2"))
        model["metadata"]["protocol"] = protocol
        model["metadata"]["protocols"] = [protocol]
        data_dir = tempfile.mkdtemp(prefix="carapace-model-")
        api_dir = os.path.join(data_dir, "ds", model["metadata"]["apiVersion"])
        os.makedirs(api_dir)
        with open(os.path.join(api_dir, "service-2.json"), "w") as f:
            json.dump(model, f)
        session = botocore.session.get_session()
        session.get_component("data_loader").search_paths.insert(0, data_dir)
        return boto3.Session(botocore_session=session).client(
            "ds",
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=botocore.config.Config(retries={"max_attempts": 1}),
        )

    def pinned_client(self, service, key="123456789012", secret="test-secret", region=REGION, protocol=None, **config):
        """A boto3 client built from the repository's pinned model (models/<service>), so a
        test speaks exactly the model Carapace is generated from, whatever botocore pip
        installed; with `protocol`, a model that offers only that wire protocol."""
        with open(os.path.join(MODELS, service, "service-2.json")) as f:
            model = json.load(f)
        data_dir = tempfile.mkdtemp(prefix="carapace-model-")
        api_dir = os.path.join(data_dir, service, model["metadata"]["apiVersion"])
        os.makedirs(api_dir)
        for name in os.listdir(os.path.join(MODELS, service)):
            shutil.copy(os.path.join(MODELS, service, name), api_dir)
        if protocol:
            model["metadata"]["protocol"] = protocol
            model["metadata"]["protocols"] = [protocol]
            with open(os.path.join(api_dir, "service-2.json"), "w") as f:
                json.dump(model, f)
        session = botocore.session.get_session()
        session.get_component("data_loader").search_paths.insert(0, data_dir)
        return boto3.Session(botocore_session=session).client(
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


# Headless Chromium as the browser tests launch it (Debian's package; no network, no sync).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
