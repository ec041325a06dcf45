"""Client LDAPS for real, through boto3 in both protocols: an AD Connector whose domain
controllers are OpenLDAP's slapd on 127.0.0.1 and 127.0.0.2, serving LDAPS with a
certificate from a test CA.

Needs /usr/sbin/slapd and openssl (tests/ldap/ensure-slapd.sh installs them; the test
script runs it). Skipped, with a message saying so, only when slapd is absent.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import Server
from test_ds import LDAP, PASSWORD, PROTOCOLS, VPC, eventually, register, settled_ldaps, wait_active

pytestmark = pytest.mark.skipif(
    not os.path.exists("/usr/sbin/slapd"), reason="slapd is not installed (run tests/ldap/ensure-slapd.sh)"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slapd:
    """slapd as a child process (run-slapd.sh execs it, so the pid is slapd's)."""

    def __init__(self, workdir, port):
        self.proc = subprocess.Popen(
            ["bash", os.path.join(LDAP, "run-slapd.sh"), workdir, str(port)], stdout=subprocess.DEVNULL
        )
        for host in ("127.0.0.1", "127.0.0.2"):

            def accepts():
                try:
                    socket.create_connection((host, port), timeout=0.2).close()
                    return True
                except OSError:
                    return False

            eventually(accepts, "slapd on %s:%d" % (host, port))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def ldap_env():
    workdir = tempfile.mkdtemp(prefix="carapace-slapd-")
    subprocess.run(["bash", os.path.join(LDAP, "make-test-pki.sh"), workdir], check=True)
    port = free_port()
    slapd = Slapd(workdir, port)
    server = Server(dev=True, env={"CARAPACE_DS_LDAPS_PORT": str(port)})

    def pem(name):
        with open(os.path.join(workdir, name + ".pem")) as f:
            return f.read()

    yield server, slapd, pem, port
    server.stop()
    slapd.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def connector(ds):
    settings = dict(VPC, CustomerDnsIps=["127.0.0.1", "127.0.0.2"], CustomerUserName="svc-connector")
    d = ds.connect_directory(Name="corp.example.com", Password=PASSWORD, Size="Small", ConnectSettings=settings)
    wait_active(ds, d["DirectoryId"])
    return d["DirectoryId"]


def enable(ds, directory_id):
    ds.enable_ldaps(DirectoryId=directory_id, Type="Client")
    return settled_ldaps(ds, directory_id)


def test_client_ldaps_against_slapd(ldap_env):
    server, slapd, pem, port = ldap_env
    clients = [server.ds_client(p, key=str(400000000000 + i)) for i, p in enumerate(PROTOCOLS)]
    trusted = {}
    for ds in clients:
        # The CA that signed slapd's certificate → Enabled.
        d = connector(ds)
        register(ds, d, pem("ca"))
        info = enable(ds, d)
        assert info["LDAPSStatus"] == "Enabled", info
        assert "LDAPSStatusReason" not in info
        trusted[ds] = d

        # Only an unrelated CA → untrusted chain.
        other = connector(ds)
        register(ds, other, pem("other-ca"))
        info = enable(ds, other)
        assert info["LDAPSStatus"] == "EnableFailed", info
        assert "untrusted certificate chain" in info["LDAPSStatusReason"]
        assert "127.0.0.1:%d" % port in info["LDAPSStatusReason"]

    # slapd stopped → unreachable.
    slapd.stop()
    time.sleep(0.1)
    for ds, d in trusted.items():
        ds.disable_ldaps(DirectoryId=d, Type="Client")
        info = enable(ds, d)
        assert info["LDAPSStatus"] == "EnableFailed", info
        assert "unreachable" in info["LDAPSStatusReason"]
