"""Where Carapace's ACM follows recordings of real ACM (LocalStack's snapshots, moto's
`aws_verified` tests) rather than its own guesses: the issuer of a pending certificate,
PutAccountConfiguration without expiry events, import chains holding certificates off the
leaf's path, and what an imported certificate shows. Driven with boto3 against the real
binary; the newest model's members and operations through a client built from the pinned
model (models/acm)."""

import os
import re
import subprocess
import tempfile
import urllib.error
import urllib.request

import botocore
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions
import pytest

from conftest import Server

ALICE = "111111111111"


def error_of(excinfo):
    err = excinfo.value.response
    return err["Error"]["Code"], err["Error"].get("Message")


@pytest.fixture(scope="module")
def server():
    """--dev with approval after two seconds: long enough to see a certificate pending."""
    server = Server(dev=True, env={"CARAPACE_ACM_DEV_AUTO_APPROVE_MS": "2000"})
    yield server
    server.stop()


def wait_issued(acm, arn):
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return acm.describe_certificate(CertificateArn=arn)["Certificate"]


@pytest.mark.parametrize("key_algorithm", ["RSA_2048", "EC_prime256v1"])
def test_pending_certificates_show_the_issuer_they_will_have(server, key_algorithm):
    # Real ACM shows `Issuer: Amazon` while PENDING_VALIDATION (and FAILED): LocalStack's
    # tests/aws/services/acm/test_acm.snapshot.json, test_domain_validation.
    acm = server.client("acm", key=ALICE)
    arn = acm.request_certificate(
        DomainName=f"issuer-{key_algorithm.lower().replace('_', '-')}.example.com", ValidationMethod="DNS", KeyAlgorithm=key_algorithm
    )["CertificateArn"]
    pending = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert pending["Status"] == "PENDING_VALIDATION"
    assert pending["Issuer"]
    issued = wait_issued(acm, arn)
    assert issued["Issuer"] == pending["Issuer"]
    # ... and it is the issuing CA's organisation, as in the certificate itself.
    pem = acm.get_certificate(CertificateArn=arn)["Certificate"]
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-issuer", "-nameopt", "sep_multiline,sname"],
        input=pem,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"O={issued['Issuer']}" in [line.strip() for line in text.splitlines()]


def test_put_account_configuration_needs_expiry_events(server):
    # The messages real ACM gives: getmoto/moto tests/test_acm/test_acm.py,
    # test_put_account_configuration_without_parameters (aws_verified).
    acm = server.client("acm", key=ALICE, parameter_validation=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.put_account_configuration(ExpiryEvents={})
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error_of(e) == (
        "ValidationException",
        "1 validation error detected: Value null at 'idempotencyToken' failed to satisfy constraint: "
        "Member must not be null",
    )
    acm.put_account_configuration(ExpiryEvents={"DaysBeforeExpiry": 30}, IdempotencyToken="first")
    for events in (None, {}):
        kwargs = {} if events is None else {"ExpiryEvents": events}
        with pytest.raises(botocore.exceptions.ClientError) as e:
            acm.put_account_configuration(IdempotencyToken="refused", **kwargs)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert error_of(e) == ("ValidationException", "Configuration for events is empty.")
    # Nothing changed, and the refused call did not use up its token.
    assert acm.get_account_configuration()["ExpiryEvents"] == {"DaysBeforeExpiry": 30}
    acm.put_account_configuration(ExpiryEvents={"DaysBeforeExpiry": 20}, IdempotencyToken="refused")
    assert acm.get_account_configuration()["ExpiryEvents"] == {"DaysBeforeExpiry": 20}


class Pki:
    """Certificates made with the openssl command line in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="carapace-chain-")

    def _path(self, name, ext):
        return os.path.join(self.dir, f"{name}.{ext}")

    def _run(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    def make(self, name, issuer=None, ca=True):
        """A certificate `CN=<name>` with a fresh P-256 key, signed by `issuer` (a name made
        before) or self-signed; returns (certificate PEM, key PEM)."""
        key, crt = self._path(name, "key"), self._path(name, "pem")
        ext = "basicConstraints=critical,CA:TRUE" if ca else f"subjectAltName=DNS:{name}"
        args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        args += ["-keyout", key, "-out", crt, "-subj", f"/O=Chain Test/CN={name}", "-days", "30", "-addext", ext]
        if issuer:
            args += ["-CA", self._path(issuer, "pem"), "-CAkey", self._path(issuer, "key")]
        self._run(*args)
        with open(crt) as c, open(key) as k:
            return c.read(), k.read()


@pytest.fixture(scope="module")
def pki():
    pki = Pki()
    pki.root_a, _ = pki.make("Root A")
    pki.inter_a, _ = pki.make("Intermediate A", issuer="Root A")
    pki.root_b, _ = pki.make("Root B")
    pki.inter_b, _ = pki.make("Intermediate B", issuer="Root B")
    pki.leaf_of_root, pki.leaf_of_root_key = pki.make("direct.example.com", issuer="Root A", ca=False)
    pki.leaf, pki.leaf_key = pki.make("chained.example.com", issuer="Intermediate A", ca=False)
    return pki


def test_import_builds_the_path_and_ignores_certificates_off_it(server, pki):
    acm = server.client("acm", key=ALICE)
    cases = [
        # moto's fixture: the leaf's root followed by an unrelated intermediate.
        (pki.leaf_of_root, pki.leaf_of_root_key, [pki.root_a, pki.inter_b]),
        # A CA bundle: another hierarchy first, each root before its intermediate.
        (pki.leaf, pki.leaf_key, [pki.root_b, pki.root_a, pki.inter_b, pki.inter_a]),
        # A path that ends short of a root.
        (pki.leaf, pki.leaf_key, [pki.inter_a]),
    ]
    for leaf, key, chain in cases:
        arn = acm.import_certificate(Certificate=leaf, PrivateKey=key, CertificateChain="".join(chain))[
            "CertificateArn"
        ]
        got = acm.get_certificate(CertificateArn=arn)
        assert got["Certificate"] == leaf
        # The chain comes back as it was given: every certificate, in the order given.
        assert got["CertificateChain"] == "".join(chain)
        assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "ISSUED"


def test_import_refuses_a_chain_the_leaf_does_not_verify_through(server, pki):
    acm = server.client("acm", key=ALICE)
    # Same names as the real issuers, other keys: only the signatures tell them apart.
    impostor = Pki()
    fake_inter, _ = impostor.make("Intermediate A")
    imported = len(acm.list_certificates(Includes={"keyTypes": ["EC_prime256v1"]})["CertificateSummaryList"])
    for chain in ([pki.root_b, pki.inter_b], [pki.root_a], [fake_inter, pki.root_a]):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            acm.import_certificate(Certificate=pki.leaf, PrivateKey=pki.leaf_key, CertificateChain="".join(chain))
        code, message = error_of(e)
        assert code == "ValidationException" and "does not link" in message, message
    assert len(acm.list_certificates(Includes={"keyTypes": ["EC_prime256v1"]})["CertificateSummaryList"]) == imported


def test_imported_certificates_show_their_creation_and_unrestricted_usages(server, pki):
    # The leaf has no key usage and no extended key usage extension.
    acm = server.client("acm", key=ALICE)
    arn = acm.import_certificate(
        Certificate=pki.leaf_of_root, PrivateKey=pki.leaf_of_root_key, CertificateChain=pki.root_a
    )["CertificateArn"]
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    # LocalStack's recorded test_import_certificate: CreatedAt beside ImportedAt, no IssuedAt.
    assert "CreatedAt" in detail and "ImportedAt" in detail and "IssuedAt" not in detail
    assert detail["KeyUsages"] == [{"Name": "ANY"}]
    assert detail["ExtendedKeyUsages"] == [{"Name": "NONE"}]
    listed = acm.list_certificates(Includes={"keyTypes": ["EC_prime256v1"]})["CertificateSummaryList"]
    summary = next(c for c in listed if c["CertificateArn"] == arn)
    assert "CreatedAt" in summary and "ImportedAt" in summary
    assert (summary["KeyUsages"], summary["ExtendedKeyUsages"]) == (["ANY"], ["NONE"])


def test_an_arn_acm_never_minted_is_not_found(server):
    # moto's BAD_ARN: the caller's account and region, an id no certificate can have.
    acm = server.client("acm", key=ALICE)
    never = f"arn:aws:acm:us-east-1:{ALICE}:certificate/_0000000-0000-0000-0000-000000000000"
    for call in (acm.describe_certificate, acm.get_certificate, acm.list_tags_for_certificate):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call(CertificateArn=never)
        assert error_of(e) == ("ResourceNotFoundException", f"Could not find certificate {never}.")
    # An ARN of another resource type still is not an ACM certificate's.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.describe_certificate(CertificateArn=f"arn:aws:acm:us-east-1:{ALICE}:acme-endpoint/x")
    assert error_of(e)[0] == "InvalidArnException"


# What botocore 1.44.18's ACM model added: the organisation inventory and the operations a
# delegated administrator runs on member accounts' resources.
NEW_OPERATIONS = [
    "SearchInventory",
    "GetInventoryConfiguration",
    "PutInventoryConfiguration",
    "GetInventoryInsights",
    "ListInventoryFindings",
    "ListInventoryRelatedResources",
    "ListInventoryUsages",
    "DeleteMemberCertificate",
    "DeleteMemberCertificateAuthority",
    "RenewMemberCertificate",
    "RestoreMemberCertificateAuthority",
    "RevokeMemberCertificate",
    "RevokeMemberIssuedCertificate",
    "UpdateMemberCertificateAuthority",
    "UpdateMemberCertificateOptions",
]


def operations_not_built():
    """Every operation the generated ACM table marks not generated (no handler)."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "model", "src", "generated", "acm.rs")
    with open(path) as f:
        return re.findall(r'name: "(\w+)", input: None, output: None, generated: false', f.read())


def test_the_new_operations_are_among_those_not_built():
    assert set(NEW_OPERATIONS) <= set(operations_not_built())


@pytest.mark.parametrize("operation", operations_not_built())
def test_an_operation_not_built_answers_not_implemented_naming_it(server, operation):
    # Client-side validation off: the operations' required members do not matter here.
    acm = server.pinned_client("acm", key=ALICE, parameter_validation=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        getattr(acm, botocore.xform_name(operation))()
    code, message = error_of(e)
    assert code == "NotImplementedException" and operation in message, message
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


def test_an_operation_in_no_model_is_unknown(server):
    request = botocore.awsrequest.AWSRequest(
        method="POST",
        url=server.endpoint + "/",
        data=b"{}",
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "CertificateManager.MadeUpOperation"},
    )
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(ALICE, "test-secret"), "acm", "us-east-1").add_auth(request)
    prepared = request.prepare()
    raw = urllib.request.Request(prepared.url, data=prepared.body, headers=dict(prepared.headers), method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(raw, timeout=10)
    assert e.value.code == 400
    assert '"UnknownOperationException"' in e.value.read().decode()


# RequestCertificate's RootHierarchyType and CertificateUsage, each case as the model's
# documentation of the two members gives it.
N2_REFUSALS = [
    ({"RootHierarchyType": "PUBLIC"}, "Member must satisfy enum value set"),
    ({"CertificateUsage": "CLIENT_AND_SERVER_AUTH"}, "CertificateUsage can be specified only when RootHierarchyType"),
    ({"CertificateUsage": "SERVER_ONLY", "RootHierarchyType": "N2_AMAZON_MANAGED"}, "enum value set"),
    (
        {
            "RootHierarchyType": "N2_AMAZON_MANAGED",
            "CertificateAuthorityArn": f"arn:aws:acm-pca:us-east-1:{ALICE}:certificate-authority/12345678-1234-1234-1234-123456789012",
        },
        "together with CertificateAuthorityArn",
    ),
    (
        {"RootHierarchyType": "N2_SFG2_AMAZON_MANAGED", "CertificateUsage": "CLIENT_AUTH_ONLY"},
        "CLIENT_AUTH_ONLY is valid only with RootHierarchyType N2_AMAZON_MANAGED",
    ),
    ({"RootHierarchyType": "N2_AMAZON_MANAGED", "ValidationMethod": "EMAIL"}, "must use ValidationMethod DNS"),
    ({"RootHierarchyType": "N2_AMAZON_MANAGED"}, "must use ValidationMethod DNS"),
]


@pytest.mark.parametrize("members,expected", N2_REFUSALS)
def test_root_hierarchy_requests_are_checked_as_documented(server, members, expected):
    acm = server.pinned_client("acm", key="222222222222", parameter_validation=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.request_certificate(DomainName="n2.example.com", **members)
    code, message = error_of(e)
    assert code == "ValidationException" and expected in message, message
    # Nothing was stored.
    listed = acm.list_certificates(
        Includes={"keyTypes": ["RSA_2048", "EC_prime256v1"]},
        RootHierarchyTypes=["N2_AMAZON_MANAGED", "N2_SFG2_AMAZON_MANAGED"],
    )["CertificateSummaryList"]
    assert [c for c in listed if c["DomainName"] == "n2.example.com"] == []


def openssl_verify(trusted_pem, chain_pem, leaf_pem, *extra):
    with tempfile.TemporaryDirectory() as d:
        paths = {}
        for name, text in [("root", trusted_pem), ("chain", chain_pem), ("leaf", leaf_pem)]:
            paths[name] = os.path.join(d, name + ".pem")
            with open(paths[name], "w") as f:
                f.write(text)
        out = subprocess.run(
            ["openssl", "verify", *extra, "-CAfile", paths["root"], "-untrusted", paths["chain"], paths["leaf"]],
            capture_output=True,
            text=True,
        )
        return out.returncode == 0, out.stdout + out.stderr


# (RootHierarchyType, CertificateUsage asked, shown, validity in days, EKU names, chain length)
N2_CASES = [
    ("N2_AMAZON_MANAGED", None, "CLIENT_AND_SERVER_AUTH", 395, ["TLS_WEB_SERVER_AUTHENTICATION", "TLS_WEB_CLIENT_AUTHENTICATION"], 2),
    ("N2_AMAZON_MANAGED", "CLIENT_AUTH_ONLY", "CLIENT_AUTH_ONLY", 395, ["TLS_WEB_CLIENT_AUTHENTICATION"], 2),
    ("N2_SFG2_AMAZON_MANAGED", None, "CLIENT_AND_SERVER_AUTH", 98, ["TLS_WEB_SERVER_AUTHENTICATION", "TLS_WEB_CLIENT_AUTHENTICATION"], 3),
]


def test_n2_certificates_chain_to_the_n2_root_or_the_cross_signed_one(server):
    """RootHierarchyType and CertificateUsage honoured: each N2 certificate is issued from
    Carapace's N2 hierarchy with its validity and EKU profile, shows both members, and its
    chain verifies with openssl against the N2 root (`/ca/n2-root.pem`) or, cross-signed,
    against the main root (`/ca/root.pem`)."""
    acm = server.pinned_client("acm", key="444444444444")
    with urllib.request.urlopen(server.endpoint + "/ca/n2-root.pem", timeout=10) as r:
        n2_root = r.read().decode()
    with urllib.request.urlopen(server.endpoint + "/ca/root.pem", timeout=10) as r:
        main_root = r.read().decode()
    arns = []
    for i, (hierarchy, usage, *_rest) in enumerate(N2_CASES):
        members = {"RootHierarchyType": hierarchy}
        if usage:
            members["CertificateUsage"] = usage
        arns.append(
            acm.request_certificate(DomainName=f"n{i}.n2.example.com", ValidationMethod="DNS", **members)["CertificateArn"]
        )
    standard = acm.request_certificate(DomainName="std.n2.example.com", ValidationMethod="DNS")["CertificateArn"]
    for arn, (hierarchy, _, shown, days, ekus, chain_len) in zip(arns, N2_CASES):
        cert = wait_issued(acm, arn)
        assert cert["RootHierarchyType"] == hierarchy and cert["CertificateUsage"] == shown, cert
        assert cert["Type"] == "AMAZON_ISSUED"
        assert (cert["NotAfter"] - cert["NotBefore"]).days == days
        assert [e["Name"] for e in cert["ExtendedKeyUsages"]] == ekus
        got = acm.get_certificate(CertificateArn=arn)
        chain = got["CertificateChain"]
        assert chain.count("BEGIN CERTIFICATE") == chain_len
        trusted = n2_root if hierarchy == "N2_AMAZON_MANAGED" else main_root
        ok, text = openssl_verify(trusted, chain, got["Certificate"])
        assert ok, text
        server_ok, text = openssl_verify(trusted, chain, got["Certificate"], "-purpose", "sslserver")
        assert server_ok == ("TLS_WEB_SERVER_AUTHENTICATION" in ekus), text
        client_ok, text = openssl_verify(trusted, chain, got["Certificate"], "-purpose", "sslclient")
        assert client_ok, text
    wait_issued(acm, standard)

    listed = [c["CertificateArn"] for c in acm.list_certificates()["CertificateSummaryList"]]
    assert listed == [standard]
    n2_listed = acm.list_certificates(RootHierarchyTypes=["N2_AMAZON_MANAGED"])["CertificateSummaryList"]
    assert sorted(c["CertificateArn"] for c in n2_listed) == sorted(arns[:2])
    assert all(c["RootHierarchyType"] == "N2_AMAZON_MANAGED" for c in n2_listed)
    search = acm.search_certificates(
        FilterStatement={"Filter": {"AcmCertificateMetadataFilter": {"RootHierarchyType": "N2_SFG2_AMAZON_MANAGED"}}}
    )
    assert [r["CertificateArn"] for r in search["Results"]] == [arns[2]]


def test_standard_certificates_carry_server_auth_alone_and_no_root_hierarchy(server):
    acm = server.pinned_client("acm", key="333333333333")
    arn = acm.request_certificate(DomainName="standard.example.com", ValidationMethod="DNS")["CertificateArn"]
    cert = wait_issued(acm, arn)
    # ACM's public certificates dropped clientAuth on 11 June 2025 (ACM concepts, "ACM
    # certificate"); RootHierarchyType and CertificateUsage exist for Amazon N2 ones only.
    assert cert["ExtendedKeyUsages"] == [{"Name": "TLS_WEB_SERVER_AUTHENTICATION", "OID": "1.3.6.1.5.5.7.3.1"}]
    assert "RootHierarchyType" not in cert and "CertificateUsage" not in cert
    pem = acm.get_certificate(CertificateArn=arn)["Certificate"]
    ext = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "extendedKeyUsage"], input=pem, capture_output=True, text=True, check=True
    ).stdout
    assert "TLS Web Server Authentication" in ext and "Client" not in ext, ext

    # ListCertificates leaves N2 certificates out by default and lists only them when asked.
    listed = acm.list_certificates()["CertificateSummaryList"]
    assert [c["CertificateArn"] for c in listed] == [arn]
    assert "RootHierarchyType" not in listed[0]
    n2 = acm.list_certificates(RootHierarchyTypes=["N2_AMAZON_MANAGED", "N2_SFG2_AMAZON_MANAGED"])
    assert n2["CertificateSummaryList"] == []
    search = acm.search_certificates(
        FilterStatement={"Filter": {"AcmCertificateMetadataFilter": {"RootHierarchyType": "N2_AMAZON_MANAGED"}}}
    )
    assert search["Results"] == []
