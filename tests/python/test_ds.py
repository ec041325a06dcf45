"""Directory Service through boto3, in both wire protocols (Smithy RPC v2 CBOR, as current
boto3 sends it, and awsJson1.1, as older SDKs do): every Directory Service operation
Carapace serves and every error it answers.

Test certificates come from tests/ldap/make-test-pki.sh (openssl) and tests/ldap/fixtures/.
"""

import datetime
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time

import botocore.exceptions
import pytest

from conftest import Server

LDAP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ldap")
PROTOCOLS = ["smithy-rpc-v2-cbor", "json"]
PASSWORD = "Sup3r-Secret!"
VPC = {"VpcId": "vpc-0123456789abcdef0", "SubnetIds": ["subnet-11111111", "subnet-22222222"]}
OCSP = {"OCSPUrl": "http://ocsp.example.com/"}
_accounts = itertools.count(300000000000)


@pytest.fixture(scope="module")
def pki():
    """`pki(name)` is the PEM of NAME.pem from make-test-pki.sh."""
    workdir = tempfile.mkdtemp(prefix="carapace-pki-")
    subprocess.run(["bash", os.path.join(LDAP, "make-test-pki.sh"), workdir], check=True)

    def pem(name):
        with open(os.path.join(workdir, name + ".pem")) as f:
            return f.read()

    yield pem
    shutil.rmtree(workdir, ignore_errors=True)


def fixture(name):
    with open(os.path.join(LDAP, "fixtures", name)) as f:
        return f.read()


@pytest.fixture(params=PROTOCOLS)
def ds(request, dev_server):
    """A DS client in one protocol, acting as an account no other test uses."""
    client = dev_server.ds_client(request.param, key=str(next(_accounts)))
    assert client.meta.service_model.protocol == request.param
    return client


def error(call, code, **kwargs):
    """Calls `call(**kwargs)`, expects AWS error `code` (HTTP 400); returns the message."""
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kwargs)
    err = e.value.response["Error"]
    assert err["Code"] == code, e.value.response
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return err.get("Message", "")


def eventually(probe, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def describe(ds, directory_id):
    return ds.describe_directories(DirectoryIds=[directory_id])["DirectoryDescriptions"][0]


def wait_active(ds, directory_id):
    eventually(lambda: describe(ds, directory_id)["Stage"] == "Active", "Active")


def simple_ad(ds):
    return ds.create_directory(Name="simple.example.com", Password=PASSWORD, Size="Small", VpcSettings=VPC)[
        "DirectoryId"
    ]


def managed_ad(ds):
    return ds.create_microsoft_ad(
        Name="corp.example.com",
        ShortName="CORP",
        Password=PASSWORD,
        VpcSettings=VPC,
        Edition="Standard",
        Tags=[{"Key": "env", "Value": "test"}],
    )["DirectoryId"]


def connector(ds, ips=("192.0.2.10",)):
    settings = dict(VPC, CustomerDnsIps=list(ips), CustomerUserName="svc-connector")
    return ds.connect_directory(Name="onprem.example.com", Password=PASSWORD, Size="Small", ConnectSettings=settings)[
        "DirectoryId"
    ]


def cert_state(ds, directory_id, certificate_id):
    try:
        cert = ds.describe_certificate(DirectoryId=directory_id, CertificateId=certificate_id)["Certificate"]
        return cert["State"]
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "CertificateDoesNotExistException"
        return None


def register(ds, directory_id, pem, **kwargs):
    cid = ds.register_certificate(DirectoryId=directory_id, CertificateData=pem, **kwargs)["CertificateId"]
    eventually(lambda: cert_state(ds, directory_id, cid) == "Registered", "Registered")
    return cid


def settled_ldaps(ds, directory_id):
    def probe():
        info = ds.describe_ldaps_settings(DirectoryId=directory_id)["LDAPSSettingsInfo"][0]
        return info if info["LDAPSStatus"] != "Enabling" else None

    return eventually(probe, "the LDAPS check")


def test_directories(ds):
    simple = simple_ad(ds)
    assert simple.startswith("d-") and len(simple) == 12
    managed = managed_ad(ds)
    conn = connector(ds, ["192.0.2.10", "192.0.2.11"])
    for d in (simple, managed, conn):
        wait_active(ds, d)

    m = describe(ds, managed)
    assert (m["Type"], m["Edition"], m["ShortName"], m["Name"]) == ("MicrosoftAD", "Standard", "CORP", "corp.example.com")
    assert m["AccessUrl"] == managed + ".awsapps.com"
    assert m["VpcSettings"]["AvailabilityZones"] == ["us-east-1a", "us-east-1b"]
    assert m["VpcSettings"]["SecurityGroupId"].startswith("sg-")
    assert len(m["DnsIpAddrs"]) == 2
    assert isinstance(m["LaunchTime"], datetime.datetime)
    assert isinstance(m["StageLastUpdatedDateTime"], datetime.datetime)
    assert "Password" not in str(m) and PASSWORD not in str(m)
    # Every type shows its desired controller count; Managed Microsoft AD its size and regions.
    assert (m["DesiredNumberOfDomainControllers"], m["Size"]) == (2, "Small")
    assert m["RegionsInfo"] == {"PrimaryRegion": "us-east-1", "AdditionalRegions": []}
    s = describe(ds, simple)
    assert (s["DesiredNumberOfDomainControllers"], "RegionsInfo" in s) == (0, False)
    a = describe(ds, conn)
    assert (a["Type"], a["Size"], a["DesiredNumberOfDomainControllers"]) == ("ADConnector", "Small", 0)
    assert a["DnsIpAddrs"] == ["192.0.2.10", "192.0.2.11"]
    assert a["ConnectSettings"]["CustomerUserName"] == "svc-connector"

    seen, token = [], None
    while True:
        page = ds.describe_directories(Limit=1, **({"NextToken": token} if token else {}))
        seen += [d["DirectoryId"] for d in page["DirectoryDescriptions"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [simple, managed, conn]
    error(ds.describe_directories, "InvalidNextTokenException", NextToken="nope")
    error(ds.describe_directories, "EntityDoesNotExistException", DirectoryIds=["d-0000000000"])
    error(ds.describe_directories, "InvalidParameterException", DirectoryIds=[])

    limits = ds.get_directory_limits()["DirectoryLimits"]
    assert (limits["CloudOnlyDirectoriesLimit"], limits["CloudOnlyDirectoriesCurrentCount"]) == (10, 1)
    assert (limits["CloudOnlyMicrosoftADLimit"], limits["CloudOnlyMicrosoftADCurrentCount"]) == (20, 1)
    assert (limits["ConnectedDirectoriesLimit"], limits["ConnectedDirectoriesCurrentCount"]) == (10, 1)
    assert limits["ConnectedDirectoriesLimitReached"] is False

    assert ds.delete_directory(DirectoryId=simple)["DirectoryId"] == simple
    error(ds.delete_directory, "EntityDoesNotExistException", DirectoryId=simple)


def test_directory_checks_and_limits(ds):
    one_subnet = {"VpcId": "vpc-12345678", "SubnetIds": ["subnet-11111111"]}
    msg = error(
        ds.create_directory,
        "InvalidParameterException",
        Name="a.example.com",
        Password=PASSWORD,
        Size="Small",
        VpcSettings=one_subnet,
    )
    assert "two subnets" in msg
    error(
        ds.create_microsoft_ad,
        "ValidationException",
        Name="a.example.com",
        Password=PASSWORD,
        VpcSettings={"VpcId": "vpc-nothex", "SubnetIds": ["subnet-11111111", "subnet-22222222"]},
    )
    no_dns = dict(VPC, CustomerUserName="svc")
    error(
        ds.connect_directory,
        "InvalidParameterException",
        Name="a.example.com",
        Password=PASSWORD,
        Size="Small",
        ConnectSettings=no_dns,
    )
    for _ in range(10):
        simple_ad(ds)
    msg = error(
        ds.create_directory,
        "DirectoryLimitExceededException",
        Name="a.example.com",
        Password=PASSWORD,
        Size="Small",
        VpcSettings=VPC,
    )
    assert "SimpleAD" in msg
    assert ds.get_directory_limits()["DirectoryLimits"]["CloudOnlyDirectoriesLimitReached"] is True


def test_tags(ds):
    d = managed_ad(ds)
    ds.add_tags_to_resource(ResourceId=d, Tags=[{"Key": "team", "Value": "a"}, {"Key": "env", "Value": "prod"}])
    tags = ds.list_tags_for_resource(ResourceId=d)["Tags"]
    assert tags == [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "a"}]
    page = ds.list_tags_for_resource(ResourceId=d, Limit=1)
    assert len(page["Tags"]) == 1
    rest = ds.list_tags_for_resource(ResourceId=d, NextToken=page["NextToken"])
    assert rest["Tags"] == [{"Key": "team", "Value": "a"}]
    ds.remove_tags_from_resource(ResourceId=d, TagKeys=["env"])
    assert ds.list_tags_for_resource(ResourceId=d)["Tags"] == [{"Key": "team", "Value": "a"}]
    many = [{"Key": "k%d" % i, "Value": "v"} for i in range(50)]
    error(ds.add_tags_to_resource, "TagLimitExceededException", ResourceId=d, Tags=many)
    error(ds.add_tags_to_resource, "InvalidParameterException", ResourceId=d, Tags=[{"Key": "aws:x", "Value": ""}])
    missing = "d-0000000000"
    error(ds.add_tags_to_resource, "EntityDoesNotExistException", ResourceId=missing, Tags=[{"Key": "a", "Value": ""}])
    error(ds.remove_tags_from_resource, "EntityDoesNotExistException", ResourceId=missing, TagKeys=["a"])
    error(ds.list_tags_for_resource, "EntityDoesNotExistException", ResourceId=missing)
    error(ds.list_tags_for_resource, "InvalidNextTokenException", ResourceId=d, NextToken="zz")


def test_certificates(ds, pki):
    simple, managed, conn = simple_ad(ds), managed_ad(ds), connector(ds)
    for d in (simple, managed, conn):
        wait_active(ds, d)
    reg = ds.register_certificate

    error(reg, "DirectoryDoesNotExistException", DirectoryId="d-0000000000", CertificateData=pki("ca"))
    error(reg, "UnsupportedOperationException", DirectoryId=simple, CertificateData=pki("ca"))
    error(
        reg,
        "UnsupportedOperationException",
        DirectoryId=managed,
        CertificateData=pki("smart-ca"),
        Type="ClientCertAuth",
        ClientCertAuthSettings=OCSP,
    )
    assert "encoding" in error(reg, "InvalidCertificateException", DirectoryId=managed, CertificateData="nope")
    # A PEM block that is not a certificate is refused in a sentence, not a parser's debug text.
    garbled = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n"
    assert error(reg, "InvalidCertificateException", DirectoryId=managed, CertificateData=garbled) == (
        "The certificate PEM that was provided has incorrect encoding: the CERTIFICATE block does not hold a "
        "well-formed DER X.509 certificate."
    )
    assert "90" in error(reg, "InvalidCertificateException", DirectoryId=managed, CertificateData=pki("soon-ca"))
    expired = fixture("expired-ca.pem")
    assert "expired" in error(reg, "InvalidCertificateException", DirectoryId=managed, CertificateData=expired)
    pss = fixture("rsassa-pss-ca.pem")
    assert "RSASSA-PSS" in error(reg, "InvalidCertificateException", DirectoryId=managed, CertificateData=pss)

    cid = reg(DirectoryId=managed, CertificateData=pki("ca"))["CertificateId"]
    assert cid.startswith("c-") and len(cid) == 12
    assert cert_state(ds, managed, cid) in ("Registering", "Registered")
    eventually(lambda: cert_state(ds, managed, cid) == "Registered", "Registered")
    cert = ds.describe_certificate(DirectoryId=managed, CertificateId=cid)["Certificate"]
    assert (cert["CommonName"], cert["Type"]) == ("Carapace Test LDAP CA", "ClientLDAPS")
    lifetime = cert["ExpiryDateTime"] - cert["RegisteredDateTime"]
    assert abs(lifetime.total_seconds() - 365 * 86400) < 120

    error(reg, "CertificateAlreadyExistsException", DirectoryId=managed, CertificateData=pki("ca"))
    for i in range(1, 5):
        reg(DirectoryId=managed, CertificateData=pki("ca-%d" % i))
    error(reg, "CertificateLimitExceededException", DirectoryId=managed, CertificateData=pki("ca-5"))

    error(reg, "InvalidParameterException", DirectoryId=conn, CertificateData=pki("smart-ca"), Type="ClientCertAuth")
    smart = reg(DirectoryId=conn, CertificateData=pki("smart-ca"), Type="ClientCertAuth", ClientCertAuthSettings=OCSP)
    cert = ds.describe_certificate(DirectoryId=conn, CertificateId=smart["CertificateId"])["Certificate"]
    assert (cert["Type"], cert["ClientCertAuthSettings"]) == ("ClientCertAuth", OCSP)

    ids, token = [], None
    while True:
        page = ds.list_certificates(DirectoryId=managed, Limit=2, **({"NextToken": token} if token else {}))
        assert len(page["CertificatesInfo"]) <= 2
        ids += [c["CertificateId"] for c in page["CertificatesInfo"]]
        token = page.get("NextToken")
        if not token:
            break
    assert len(ids) == 5 and ids[0] == cid
    error(ds.list_certificates, "InvalidNextTokenException", DirectoryId=managed, NextToken="bogus")
    error(ds.list_certificates, "DirectoryDoesNotExistException", DirectoryId="d-0000000000")
    error(ds.list_certificates, "UnsupportedOperationException", DirectoryId=simple)
    error(ds.describe_certificate, "CertificateDoesNotExistException", DirectoryId=managed, CertificateId="c-0000000000")
    error(ds.describe_certificate, "DirectoryDoesNotExistException", DirectoryId="d-0000000000", CertificateId=cid)

    ds.deregister_certificate(DirectoryId=managed, CertificateId=cid)
    assert cert_state(ds, managed, cid) in ("Deregistering", None)
    error(ds.deregister_certificate, "CertificateDoesNotExistException", DirectoryId=managed, CertificateId=cid)
    eventually(lambda: cert_state(ds, managed, cid) is None, "Deregistered")
    assert len(ds.list_certificates(DirectoryId=managed)["CertificatesInfo"]) == 4
    reg(DirectoryId=managed, CertificateData=pki("ca-5"))
    error(ds.deregister_certificate, "DirectoryDoesNotExistException", DirectoryId="d-0000000000", CertificateId=cid)


def test_stages_and_unavailable_directories(pki):
    # Two seconds per stage: long enough to observe each even on a loaded machine.
    server = Server(dev=True, env={"CARAPACE_DS_STAGE_DELAY_MS": "2000"})
    try:
        for protocol in PROTOCOLS:
            ds = server.ds_client(protocol, key=str(next(_accounts)))
            d = managed_ad(ds)
            assert describe(ds, d)["Stage"] == "Requested"
            error(ds.register_certificate, "DirectoryUnavailableException", DirectoryId=d, CertificateData=pki("ca"))
            error(ds.enable_ldaps, "DirectoryUnavailableException", DirectoryId=d, Type="Client")
            error(ds.disable_ldaps, "DirectoryUnavailableException", DirectoryId=d, Type="Client")
            error(
                ds.deregister_certificate,
                "DirectoryUnavailableException",
                DirectoryId=d,
                CertificateId="c-0000000000",
            )
            eventually(lambda: describe(ds, d)["Stage"] == "Creating", "Creating")
            wait_active(ds, d)
            desc = describe(ds, d)
            assert abs((desc["StageLastUpdatedDateTime"] - desc["LaunchTime"]).total_seconds() - 4.0) < 0.01
            register(ds, d, pki("ca"))
            ds.delete_directory(DirectoryId=d)
    finally:
        server.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ldaps_errors_and_unreachable_controller(pki):
    port = free_port()  # nothing listens there
    server = Server(dev=True, env={"CARAPACE_DS_LDAPS_PORT": str(port)})
    try:
        for protocol in PROTOCOLS:
            ds = server.ds_client(protocol, key=str(next(_accounts)))
            simple, conn = simple_ad(ds), connector(ds, ["127.0.0.1"])
            wait_active(ds, simple)
            wait_active(ds, conn)
            error(ds.enable_ldaps, "DirectoryDoesNotExistException", DirectoryId="d-0000000000", Type="Client")
            error(ds.enable_ldaps, "UnsupportedOperationException", DirectoryId=simple, Type="Client")
            error(ds.describe_ldaps_settings, "UnsupportedOperationException", DirectoryId=simple)
            error(ds.describe_ldaps_settings, "DirectoryDoesNotExistException", DirectoryId="d-0000000000")
            info = ds.describe_ldaps_settings(DirectoryId=conn)["LDAPSSettingsInfo"]
            assert info == [{"LDAPSStatus": "Disabled"}]
            error(ds.enable_ldaps, "NoAvailableCertificateException", DirectoryId=conn, Type="Client")
            error(ds.disable_ldaps, "InvalidLDAPSStatusException", DirectoryId=conn, Type="Client")
            error(ds.disable_ldaps, "DirectoryDoesNotExistException", DirectoryId="d-0000000000", Type="Client")

            cid = register(ds, conn, pki("ca"))
            ds.enable_ldaps(DirectoryId=conn, Type="Client")
            status = ds.describe_ldaps_settings(DirectoryId=conn, Type="Client")["LDAPSSettingsInfo"][0]
            if status["LDAPSStatus"] == "Enabling":
                error(ds.enable_ldaps, "InvalidLDAPSStatusException", DirectoryId=conn, Type="Client")
                error(ds.deregister_certificate, "CertificateInUseException", DirectoryId=conn, CertificateId=cid)
            info = settled_ldaps(ds, conn)
            assert info["LDAPSStatus"] == "EnableFailed"
            assert "unreachable" in info["LDAPSStatusReason"]
            assert "127.0.0.1:%d" % port in info["LDAPSStatusReason"]
            assert isinstance(info["LastUpdatedDateTime"], datetime.datetime)
            error(ds.describe_ldaps_settings, "InvalidNextTokenException", DirectoryId=conn, NextToken="x")
            ds.disable_ldaps(DirectoryId=conn, Type="Client")
            ds.deregister_certificate(DirectoryId=conn, CertificateId=cid)
    finally:
        server.stop()


def test_managed_ad_ldaps_and_certificate_in_use(ds, pki):
    d = managed_ad(ds)
    wait_active(ds, d)
    cid = register(ds, d, pki("ca"))
    ds.enable_ldaps(DirectoryId=d, Type="Client")
    info = settled_ldaps(ds, d)
    assert info["LDAPSStatus"] == "Enabled" and "LDAPSStatusReason" not in info
    error(ds.enable_ldaps, "InvalidLDAPSStatusException", DirectoryId=d, Type="Client")
    error(ds.deregister_certificate, "CertificateInUseException", DirectoryId=d, CertificateId=cid)
    register(ds, d, pki("ca-1"))
    ds.deregister_certificate(DirectoryId=d, CertificateId=cid)


def test_smart_card_client_authentication(ds, pki):
    managed, conn = managed_ad(ds), connector(ds)
    wait_active(ds, managed)
    wait_active(ds, conn)
    enable, disable = ds.enable_client_authentication, ds.disable_client_authentication
    describe_auth = ds.describe_client_authentication_settings

    error(enable, "DirectoryDoesNotExistException", DirectoryId="d-0000000000", Type="SmartCard")
    error(enable, "UnsupportedOperationException", DirectoryId=managed, Type="SmartCard")
    error(disable, "UnsupportedOperationException", DirectoryId=managed, Type="SmartCard")
    error(describe_auth, "UnsupportedOperationException", DirectoryId=managed)
    error(describe_auth, "DirectoryDoesNotExistException", DirectoryId="d-0000000000")
    error(enable, "NoAvailableCertificateException", DirectoryId=conn, Type="SmartCard")
    error(disable, "InvalidClientAuthStatusException", DirectoryId=conn, Type="SmartCard")
    infos = describe_auth(DirectoryId=conn)["ClientAuthenticationSettingsInfo"]
    assert [(i["Type"], i["Status"]) for i in infos] == [("SmartCard", "Disabled"), ("SmartCardOrPassword", "Disabled")]

    cid = register(ds, conn, pki("smart-ca"), Type="ClientCertAuth", ClientCertAuthSettings=OCSP)
    enable(DirectoryId=conn, Type="SmartCard")
    error(enable, "InvalidClientAuthStatusException", DirectoryId=conn, Type="SmartCard")
    error(enable, "InvalidClientAuthStatusException", DirectoryId=conn, Type="SmartCardOrPassword")
    info = describe_auth(DirectoryId=conn, Type="SmartCard")["ClientAuthenticationSettingsInfo"]
    assert len(info) == 1 and info[0]["Status"] == "Enabled"
    assert isinstance(info[0]["LastUpdatedDateTime"], datetime.datetime)
    page = describe_auth(DirectoryId=conn, Limit=1)
    assert len(page["ClientAuthenticationSettingsInfo"]) == 1 and page["NextToken"]
    error(ds.deregister_certificate, "CertificateInUseException", DirectoryId=conn, CertificateId=cid)
    disable(DirectoryId=conn, Type="SmartCard")
    enable(DirectoryId=conn, Type="SmartCardOrPassword")
    disable(DirectoryId=conn, Type="SmartCardOrPassword")
    ds.deregister_certificate(DirectoryId=conn, CertificateId=cid)


def test_errors_carry_message_and_request_id(ds):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ds.describe_directories(DirectoryIds=["d-0123456789"])
    err = e.value.response["Error"]
    assert err["Code"] == "EntityDoesNotExistException"
    assert "d-0123456789" in err["Message"]
    assert e.value.response["ResponseMetadata"]["RequestId"]
