"""AWS Private CA with boto3 (Smithy RPC v2 CBOR, from the pinned model) and the AWS CLI.

A two-level hierarchy built only through the API — a root that signs its own certificate, a
subordinate it signs, a leaf from an openssl request — verified by `openssl verify` against
the CRL the subordinate publishes, before and after a revocation; a subordinate signed by an
openssl CA outside Carapace; the delete / restore lifecycle; the errors AWS answers. What
Carapace signs passes pkilint's RFC 5280 lints (`lint_pkix_cert`, `lint_crl`).

The server runs with a public-looking `base_url` (pkilint flags loopback URLs); the CRL is
fetched from the server's own address at the same path.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import botocore.exceptions
import pytest

from conftest import Server

BASE_URL = "http://pki.carapace.example.com"
ALICE = "111111111111"
BOB = "222222222222"
TEMPLATE = "arn:aws:acm-pca:::template/{}/V1"
AWS = os.path.join(os.path.dirname(sys.executable), "aws")
if not os.path.exists(AWS):
    AWS = "aws"


@pytest.fixture(scope="module")
def server():
    s = Server(dev=True, env={"CARAPACE_BASE_URL": BASE_URL})
    yield s
    s.stop()


def pca(server, account=ALICE):
    return server.pinned_client("acm-pca", key=account, secret="pca-secret")


def error_of(excinfo):
    err = excinfo.value.response
    return err["Error"]["Code"], err["Error"].get("Message", "")


def openssl(*args, cwd=None, check=True):
    out = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if check:
        assert out.returncode == 0, f"openssl {' '.join(args)}:\n{out.stdout}{out.stderr}"
    return out


def lint(tool, *args):
    """pkilint's findings at ERROR or above (pkilint installed next to this interpreter)."""
    beside = os.path.join(os.path.dirname(sys.executable), tool)
    tool = beside if os.path.exists(beside) else tool
    out = subprocess.run([tool, "lint", "-s", "ERROR", "-f", "JSON", *args], capture_output=True, text=True)
    results = json.loads(out.stdout)["results"]
    return [f"{f['code']} at {r['node_path']}" for r in results for f in r["finding_descriptions"]]


def ca_config(key, signing, cn):
    return {
        "KeyAlgorithm": key,
        "SigningAlgorithm": signing,
        "Subject": {"Country": "US", "Organization": "Example Corp", "CommonName": cn},
    }


def issue_and_get(client, ca_arn, csr, signing, template, validity):
    arn = client.issue_certificate(
        CertificateAuthorityArn=ca_arn,
        Csr=csr,
        SigningAlgorithm=signing,
        TemplateArn=TEMPLATE.format(template),
        Validity=validity,
    )["CertificateArn"]
    client.get_waiter("certificate_issued").wait(
        CertificateAuthorityArn=ca_arn, CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    return client.get_certificate(CertificateAuthorityArn=ca_arn, CertificateArn=arn)


def active_root(client):
    arn = client.create_certificate_authority(
        CertificateAuthorityType="ROOT",
        CertificateAuthorityConfiguration=ca_config("EC_secp384r1", "SHA384WITHECDSA", "Example Root"),
        Tags=[{"Key": "team", "Value": "pki"}],
    )["CertificateAuthorityArn"]
    client.get_waiter("certificate_authority_csr_created").wait(CertificateAuthorityArn=arn)
    csr = client.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"]
    got = issue_and_get(client, arn, csr.encode(), "SHA384WITHECDSA", "RootCACertificate", {"Value": 10, "Type": "YEARS"})
    assert "CertificateChain" not in got
    client.import_certificate_authority_certificate(CertificateAuthorityArn=arn, Certificate=got["Certificate"].encode())
    return arn


def fetch(server, url):
    path = url.removeprefix(BASE_URL)
    with urllib.request.urlopen(server.endpoint + path) as r:
        return r.read()


def test_a_two_level_hierarchy_verifies_with_its_crl_before_and_after_a_revocation(server):
    client = pca(server)
    root = active_root(client)
    described = client.describe_certificate_authority(CertificateAuthorityArn=root)["CertificateAuthority"]
    assert described["Status"] == "ACTIVE" and described["Type"] == "ROOT", described
    assert described["OwnerAccount"] == ALICE and described["Serial"]
    assert client.list_tags(CertificateAuthorityArn=root)["Tags"] == [{"Key": "team", "Value": "pki"}]

    crl_config = {"Enabled": True, "S3BucketName": "example-pki", "ExpirationInDays": 7}
    sub = client.create_certificate_authority(
        CertificateAuthorityType="SUBORDINATE",
        CertificateAuthorityConfiguration=ca_config("RSA_2048", "SHA256WITHRSA", "Example Issuing CA"),
        RevocationConfiguration={"CrlConfiguration": crl_config, "OcspConfiguration": {"Enabled": True}},
    )["CertificateAuthorityArn"]
    sub_id = sub.rsplit("/", 1)[1]
    assert client.describe_certificate_authority(CertificateAuthorityArn=sub)["CertificateAuthority"]["Status"] == (
        "PENDING_CERTIFICATE"
    )
    sub_csr = client.get_certificate_authority_csr(CertificateAuthorityArn=sub)["Csr"]
    got = issue_and_get(
        client, root, sub_csr.encode(), "SHA384WITHECDSA", "SubordinateCACertificate_PathLen0", {"Value": 5, "Type": "YEARS"}
    )
    client.import_certificate_authority_certificate(
        CertificateAuthorityArn=sub, Certificate=got["Certificate"].encode(), CertificateChain=got["CertificateChain"].encode()
    )
    root_pem = client.get_certificate_authority_certificate(CertificateAuthorityArn=root)["Certificate"]
    sub_got = client.get_certificate_authority_certificate(CertificateAuthorityArn=sub)
    assert sub_got["CertificateChain"].strip() == root_pem.strip()

    with tempfile.TemporaryDirectory() as d:
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key", cwd=d)
        openssl("req", "-new", "-key", "leaf.key", "-subj", "/CN=api.internal", "-addext",
                "subjectAltName=DNS:api.internal", "-out", "leaf.csr", cwd=d)
        with open(os.path.join(d, "leaf.csr"), "rb") as f:
            leaf_csr = f.read()
        leaf = issue_and_get(client, sub, leaf_csr, "SHA256WITHRSA", "EndEntityServerAuthCertificate",
                             {"Value": 30, "Type": "DAYS"})
        files = {"root.pem": root_pem, "sub.pem": sub_got["Certificate"], "leaf.pem": leaf["Certificate"]}
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        assert leaf["CertificateChain"].startswith(sub_got["Certificate"].strip())

        dp = openssl("x509", "-in", "leaf.pem", "-noout", "-ext", "crlDistributionPoints", cwd=d).stdout
        url = re.search(r"URI:(\S+)", dp).group(1)
        assert url == f"{BASE_URL}/s3/example-pki/crl/{sub_id}.crl", dp
        aia = openssl("x509", "-in", "leaf.pem", "-noout", "-ocsp_uri", cwd=d).stdout.strip()
        assert aia == f"{BASE_URL}/pca/ocsp", aia

        def ocsp():
            out = openssl("ocsp", "-issuer", "sub.pem", "-cert", "leaf.pem", "-url", server.endpoint + "/pca/ocsp",
                          "-CAfile", "root.pem", "-verify_other", "sub.pem", cwd=d, check=False)
            return out.stdout + out.stderr

        assert "leaf.pem: good" in ocsp()

        def verify():
            with open(os.path.join(d, "crl.der"), "wb") as f:
                f.write(fetch(server, url))
            openssl("crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem", cwd=d)
            return openssl("verify", "-crl_check", "-CRLfile", "crl.pem", "-CAfile", "root.pem", "-untrusted",
                           "sub.pem", "-purpose", "sslserver", "leaf.pem", cwd=d, check=False)

        def crl_number():
            return openssl("crl", "-in", "crl.pem", "-noout", "-crlnumber", cwd=d).stdout.strip()

        deadline = time.time() + 15
        while True:
            try:
                out = verify()
                break
            except urllib.error.HTTPError:
                assert time.time() < deadline, "the first CRL was not published"
                time.sleep(0.2)
        assert out.returncode == 0, out.stdout + out.stderr
        first = crl_number()

        serial = openssl("x509", "-in", "leaf.pem", "-noout", "-serial", cwd=d).stdout.strip().split("=")[1]
        cli(server, "acm-pca", "revoke-certificate", "--certificate-authority-arn", sub, "--certificate-serial", serial,
            "--revocation-reason", "KEY_COMPROMISE")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client.revoke_certificate(CertificateAuthorityArn=sub, CertificateSerial=serial,
                                      RevocationReason="KEY_COMPROMISE")
        assert error_of(e)[0] == "RequestAlreadyProcessedException"
        deadline = time.time() + 15
        while True:
            out = verify()
            if crl_number() != first:
                break
            assert time.time() < deadline, "no new CRL after the revocation"
            time.sleep(0.2)
        assert out.returncode != 0 and "certificate revoked" in out.stdout + out.stderr, out.stdout + out.stderr
        answer = ocsp()
        assert "leaf.pem: revoked" in answer and "Reason: keyCompromise" in answer, answer

        # What Carapace signed passes pkilint's RFC 5280 lints.
        for name in files:
            assert lint("lint_pkix_cert", os.path.join(d, name)) == [], name
        assert lint("lint_crl", "-t", "CRL", "-p", "PKIX", os.path.join(d, "crl.der")) == []


def test_a_subordinate_signed_by_openssl_outside_carapace_installs_and_issues(server):
    client = pca(server)
    sub = client.create_certificate_authority(
        CertificateAuthorityType="SUBORDINATE",
        CertificateAuthorityConfiguration=ca_config("EC_prime256v1", "SHA256WITHECDSA", "Outside-signed Issuing CA"),
    )["CertificateAuthorityArn"]
    csr = client.get_certificate_authority_csr(CertificateAuthorityArn=sub)["Csr"]
    with tempfile.TemporaryDirectory() as d:
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "root.key", "-subj", "/CN=Outside Root",
                "-days", "365", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                "keyUsage=critical,keyCertSign,cRLSign", "-out", "root.pem", cwd=d)
        with open(os.path.join(d, "sub.csr"), "w") as f:
            f.write(csr)
        with open(os.path.join(d, "ext.cnf"), "w") as f:
            f.write("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
        openssl("x509", "-req", "-in", "sub.csr", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial", "-days",
                "30", "-extfile", "ext.cnf", "-out", "sub.pem", cwd=d)
        sub_pem = open(os.path.join(d, "sub.pem"), "rb").read()
        root_pem = open(os.path.join(d, "root.pem"), "rb").read()

        # Not its key, and a chain that does not end in a root, are refused.
        other = client.create_certificate_authority(
            CertificateAuthorityType="SUBORDINATE",
            CertificateAuthorityConfiguration=ca_config("EC_prime256v1", "SHA256WITHECDSA", "Other"),
        )["CertificateAuthorityArn"]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client.import_certificate_authority_certificate(CertificateAuthorityArn=other, Certificate=sub_pem,
                                                            CertificateChain=root_pem)
        assert error_of(e)[0] == "CertificateMismatchException"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client.import_certificate_authority_certificate(CertificateAuthorityArn=sub, Certificate=sub_pem,
                                                            CertificateChain=sub_pem)
        assert error_of(e)[0] == "InvalidRequestException"

        client.import_certificate_authority_certificate(CertificateAuthorityArn=sub, Certificate=sub_pem,
                                                        CertificateChain=root_pem)
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "c.key",
                "-subj", "/CN=client-7", "-out", "c.csr", cwd=d)
        got = issue_and_get(client, sub, open(os.path.join(d, "c.csr"), "rb").read(), "SHA256WITHECDSA",
                            "EndEntityClientAuthCertificate", {"Value": 7, "Type": "DAYS"})
        with open(os.path.join(d, "c.pem"), "w") as f:
            f.write(got["Certificate"])
        openssl("verify", "-CAfile", "root.pem", "-untrusted", "sub.pem", "-purpose", "sslclient", "c.pem", cwd=d)


def test_delete_restore_and_the_window(server):
    client = pca(server)
    pending = client.create_certificate_authority(
        CertificateAuthorityType="ROOT", CertificateAuthorityConfiguration=ca_config("EC_prime256v1", "SHA256WITHECDSA", "P")
    )["CertificateAuthorityArn"]
    client.delete_certificate_authority(CertificateAuthorityArn=pending)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.describe_certificate_authority(CertificateAuthorityArn=pending)
    assert error_of(e)[0] == "ResourceNotFoundException"

    root = active_root(client)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.delete_certificate_authority(CertificateAuthorityArn=root)
    assert error_of(e)[0] == "InvalidStateException"
    client.update_certificate_authority(CertificateAuthorityArn=root, Status="DISABLED")
    client.delete_certificate_authority(CertificateAuthorityArn=root, PermanentDeletionTimeInDays=7)
    deleted = client.describe_certificate_authority(CertificateAuthorityArn=root)["CertificateAuthority"]
    assert deleted["Status"] == "DELETED" and "RestorableUntil" in deleted, deleted
    client.restore_certificate_authority(CertificateAuthorityArn=root)
    assert client.describe_certificate_authority(CertificateAuthorityArn=root)["CertificateAuthority"]["Status"] == (
        "DISABLED"
    )
    listed = [ca["Arn"] for ca in client.list_certificate_authorities()["CertificateAuthorities"]]
    assert root in listed and pending not in listed


def test_errors_are_aws_errors(server):
    client = pca(server)
    root = active_root(client)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.issue_certificate(CertificateAuthorityArn=root, Csr=b"not a request", SigningAlgorithm="SHA384WITHECDSA",
                                 Validity={"Value": 1, "Type": "YEARS"})
    assert error_of(e)[0] == "MalformedCSRException"
    csr = client.get_certificate_authority_csr(CertificateAuthorityArn=root)["Csr"].encode()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.issue_certificate(CertificateAuthorityArn=root, Csr=csr, SigningAlgorithm="SHA256WITHRSA",
                                 Validity={"Value": 1, "Type": "YEARS"})
    assert error_of(e)[0] == "InvalidArgsException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.create_certificate_authority(CertificateAuthorityType="ROOT",
                                            CertificateAuthorityConfiguration=ca_config("SM2", "SM3WITHSM2", "x"))
    code, message = error_of(e)
    assert code == "InvalidArgsException" and "SM2" in message, message
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.create_certificate_authority(
            CertificateAuthorityType="ROOT",
            CertificateAuthorityConfiguration=ca_config("EC_prime256v1", "SHA256WITHECDSA", "x"),
            RevocationConfiguration={"CrlConfiguration": {"Enabled": True, "S3BucketName": "pki-bucket", "CrlType": "PARTITIONED"}},
        )
    code, message = error_of(e)
    assert code == "InvalidArgsException" and "PARTITIONED" in message, message
    # Another account may not read Alice's CA without her policy.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        pca(server, BOB).describe_certificate_authority(CertificateAuthorityArn=root)
    assert error_of(e)[0] == "AccessDeniedException"
    # An ARN of the model's form that names no CA; one not of that form fails validation.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.describe_certificate_authority(CertificateAuthorityArn="arn:aws:acm-pca:us-east-1:111111111111:template/x")
    assert error_of(e)[0] == "InvalidArnException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.describe_certificate_authority(CertificateAuthorityArn="arn:aws:acm:us-east-1:111111111111:certificate/x")
    assert error_of(e)[0] == "ValidationException"


def cli(server, *args, account=ALICE):
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=account,
        AWS_SECRET_ACCESS_KEY="cli-secret",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    out = subprocess.run([AWS, "--endpoint-url", server.endpoint, *args], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_cli_creates_waits_and_describes(server):
    config = json.dumps(ca_config("EC_prime256v1", "SHA256WITHECDSA", "CLI Root"))
    arn = cli(server, "acm-pca", "create-certificate-authority", "--certificate-authority-type", "ROOT",
              "--certificate-authority-configuration", config, "--query", "CertificateAuthorityArn",
              "--output", "text").strip()
    cli(server, "acm-pca", "wait", "certificate-authority-csr-created", "--certificate-authority-arn", arn)
    status = cli(server, "acm-pca", "describe-certificate-authority", "--certificate-authority-arn", arn,
                 "--query", "CertificateAuthority.Status", "--output", "text").strip()
    assert status == "PENDING_CERTIFICATE"


def test_acm_private_certificates_are_signed_by_the_ca_exported_renewed_and_revoked_there(server):
    client = pca(server)
    acm = server.client("acm", key=ALICE, secret="pca-secret")
    crl_config = {"Enabled": True, "S3BucketName": "acm-private", "ExpirationInDays": 7}
    root = client.create_certificate_authority(
        CertificateAuthorityType="ROOT",
        CertificateAuthorityConfiguration=ca_config("EC_prime256v1", "SHA256WITHECDSA", "ACM Private Root"),
        RevocationConfiguration={"CrlConfiguration": crl_config},
    )["CertificateAuthorityArn"]
    csr = client.get_certificate_authority_csr(CertificateAuthorityArn=root)["Csr"].encode()
    got = issue_and_get(client, root, csr, "SHA256WITHECDSA", "RootCACertificate", {"Value": 5, "Type": "YEARS"})
    client.import_certificate_authority_certificate(CertificateAuthorityArn=root, Certificate=got["Certificate"].encode())

    arn = acm.request_certificate(
        DomainName="svc.corp.internal", SubjectAlternativeNames=["api.corp.internal"], CertificateAuthorityArn=root
    )["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    described = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert described["Type"] == "PRIVATE" and described["Status"] == "ISSUED", described
    assert described["CertificateAuthorityArn"] == root
    assert described["RenewalEligibility"] == "ELIGIBLE"
    assert described["SubjectAlternativeNames"] == ["svc.corp.internal", "api.corp.internal"]

    exported = acm.export_certificate(CertificateArn=arn, Passphrase=b"correct horse")
    with tempfile.TemporaryDirectory() as d:
        for name, text in [("root.pem", got["Certificate"]), ("leaf.pem", exported["Certificate"]),
                           ("chain.pem", exported["CertificateChain"]), ("key.pem", exported["PrivateKey"])]:
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        openssl("verify", "-CAfile", "root.pem", "-purpose", "sslserver", "leaf.pem", cwd=d)
        key_pub = openssl("pkey", "-in", "key.pem", "-passin", "pass:correct horse", "-pubout", cwd=d).stdout
        cert_pub = openssl("x509", "-in", "leaf.pem", "-noout", "-pubkey", cwd=d).stdout
        assert key_pub == cert_pub
        first_serial = described["Serial"]

        # RenewCertificate renews now, signed by the same CA.
        acm.renew_certificate(CertificateArn=arn)
        deadline = time.time() + 15
        while acm.describe_certificate(CertificateArn=arn)["Certificate"]["Serial"] == first_serial:
            assert time.time() < deadline, "the private certificate was not renewed"
            time.sleep(0.2)

        # Revoking in ACM revokes at the CA: its CRL lists the certificate.
        serial = acm.describe_certificate(CertificateArn=arn)["Certificate"]["Serial"].replace(":", "")
        acm.revoke_certificate(CertificateArn=arn, RevocationReason="KEY_COMPROMISE")
        assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "REVOKED"
        url = f"/s3/acm-private/crl/{root.rsplit('/', 1)[1]}.crl"
        deadline = time.time() + 15
        while True:
            try:
                with open(os.path.join(d, "crl.der"), "wb") as f:
                    f.write(fetch(server, BASE_URL + url))
                text = openssl("crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text", cwd=d).stdout
                if serial.upper().lstrip("0") in text.replace(":", "").upper():
                    break
            except urllib.error.HTTPError:
                pass
            assert time.time() < deadline, "the CA's CRL does not list the revoked certificate"
            time.sleep(0.2)

    # Another account's CA, not shared: the request fails with the reason ACM gives.
    bob = server.client("acm", key=BOB, secret="pca-secret")
    other = bob.request_certificate(DomainName="x.corp.internal", CertificateAuthorityArn=root)["CertificateArn"]
    deadline = time.time() + 15
    while (cert := bob.describe_certificate(CertificateArn=other)["Certificate"])["Status"] == "PENDING_VALIDATION":
        assert time.time() < deadline
        time.sleep(0.2)
    assert cert["Status"] == "FAILED" and cert["FailureReason"] == "PCA_ACCESS_DENIED", cert


def test_a_policy_shares_a_ca_with_another_account(server):
    alice, bob = pca(server), pca(server, BOB)
    root = active_root(alice)
    csr = alice.get_certificate_authority_csr(CertificateAuthorityArn=root)["Csr"].encode()
    ask = dict(CertificateAuthorityArn=root, Csr=csr, SigningAlgorithm="SHA384WITHECDSA",
               Validity={"Value": 30, "Type": "DAYS"})

    # Without a policy Bob may not issue, nor see the CA.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bob.issue_certificate(**ask)
    assert error_of(e)[0] == "AccessDeniedException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bob.describe_certificate_authority(CertificateAuthorityArn=root)
    assert error_of(e)[0] == "AccessDeniedException"

    # The shape AWS RAM's managed permission gives: issue end-entity certificates (the
    # template condition), and read the CA and what it issued.
    policy = json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "issue",
                "Effect": "Allow",
                "Principal": {"AWS": BOB},
                "Action": "acm-pca:IssueCertificate",
                "Resource": root,
                "Condition": {"StringEquals": {"acm-pca:TemplateArn": TEMPLATE.format("EndEntityCertificate")}},
            },
            {
                "Sid": "read",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{BOB}:root"},
                "Action": ["acm-pca:GetCertificate", "acm-pca:DescribeCertificateAuthority",
                           "acm-pca:GetCertificateAuthorityCertificate"],
                "Resource": root,
            },
        ],
    })
    with pytest.raises(botocore.exceptions.ClientError) as e:
        alice.put_policy(ResourceArn=root, Policy=json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*"}]}))
    assert error_of(e)[0] == "InvalidPolicyException"
    alice.put_policy(ResourceArn=root, Policy=policy)
    assert json.loads(alice.get_policy(ResourceArn=root)["Policy"]) == json.loads(policy)

    arn = bob.issue_certificate(**ask)["CertificateArn"]
    bob.get_waiter("certificate_issued").wait(CertificateAuthorityArn=root, CertificateArn=arn,
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert bob.get_certificate(CertificateAuthorityArn=root, CertificateArn=arn)["Certificate"].startswith("-----BEGIN")
    assert bob.describe_certificate_authority(CertificateAuthorityArn=root)["CertificateAuthority"]["OwnerAccount"] == ALICE
    # Only the templates the condition names.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bob.issue_certificate(TemplateArn=TEMPLATE.format("SubordinateCACertificate_PathLen0"), **ask)
    assert error_of(e)[0] == "AccessDeniedException"

    # ACM in Bob's account gets private certificates from the shared CA.
    acm = server.client("acm", key=BOB, secret="pca-secret")
    cert = acm.request_certificate(DomainName="shared.corp.internal", CertificateAuthorityArn=root)["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=cert, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert acm.describe_certificate(CertificateArn=cert)["Certificate"]["Status"] == "ISSUED"

    alice.delete_policy(ResourceArn=root)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bob.issue_certificate(**ask)
    assert error_of(e)[0] == "AccessDeniedException"


def test_an_audit_report_is_written_served_and_waited_for(server):
    client = pca(server)
    root = active_root(client)
    report = client.create_certificate_authority_audit_report(
        CertificateAuthorityArn=root, S3BucketName="audit-reports", AuditReportResponseFormat="JSON"
    )
    client.get_waiter("audit_report_created").wait(
        CertificateAuthorityArn=root, AuditReportId=report["AuditReportId"], WaiterConfig={"Delay": 1, "MaxAttempts": 10}
    )
    described = client.describe_certificate_authority_audit_report(
        CertificateAuthorityArn=root, AuditReportId=report["AuditReportId"]
    )
    assert described["AuditReportStatus"] == "SUCCESS" and described["S3Key"] == report["S3Key"], described
    lines = json.loads(fetch(server, f"{BASE_URL}/s3/audit-reports/{report['S3Key']}"))
    # The root's own certificate, issued through the API.
    assert len(lines) == 1 and lines[0]["certificateArn"].startswith(root + "/certificate/"), lines
    assert lines[0]["templateArn"] == TEMPLATE.format("RootCACertificate"), lines
