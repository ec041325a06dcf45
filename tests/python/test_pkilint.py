"""pkilint (the CA/Browser Forum and RFC 5280 linter, PyPI) over what Carapace's CA signs.

For every key type RequestCertificate accepts, the leaf is linted as a domain-validated TLS
certificate (`lint_cabf_serverauth_cert -t DV-FINAL-CERTIFICATE`), its intermediate as a TLS
subordinate CA and the root as a root CA, each also by `lint_pkix_cert`; each link of the chain
by `lint_pkix_signer_signee_cert_chain`; the CRLs of both levels by `lint_crl` under the
Baseline Requirements' profile, one with a revoked certificate listed; and OCSP answers, good
and revoked, by `lint_ocsp_response`. Nothing may be reported at ERROR or above. And an
openssl-made CA given to `carapace ca import` is imported, with the findings pkilint reports.

The server runs with a public-looking `base_url`: pkilint reports URLs and names under
loopback or internal names, which Carapace would only carry because of the test's address.
"""

import json
import os
import re
import subprocess
import tempfile
import urllib.request

import pytest

from conftest import BIN, Server

BASE_URL = "http://pki.carapace.example.com"
# RequestCertificate's KeyAlgorithm values (crates/acm/src/request.rs `REQUESTABLE`);
# RSA_3072, RSA_4096 and EC_secp521r1 exist for ImportCertificate only, as in ACM.
KEY_ALGORITHMS = ["RSA_2048", "EC_prime256v1", "EC_secp384r1"]
PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", re.S)


def lint(tool, *args):
    """pkilint's findings at ERROR or above, as text lines: `tool lint <args>`, the documents
    last."""
    cmd = [tool, "lint", "-s", "ERROR", "-f", "JSON", *args]
    out = subprocess.run(cmd, capture_output=True, text=True)
    try:
        results = json.loads(out.stdout)["results"]
    except (ValueError, KeyError):
        pytest.fail(f"{' '.join(cmd)} gave no JSON report:\n{out.stdout}\n{out.stderr}")
    return [
        f"{finding['severity']} {finding['code']} at {result['node_path']}: {finding['message']}"
        for result in results
        for finding in result["finding_descriptions"]
    ]


def assert_clean(tool, *args, show=()):
    """No findings at ERROR or above; else they are printed, with the documents in `show`."""
    findings = lint(tool, *args)
    shown = "".join(openssl(*command) for command in show)
    assert not findings, f"{tool} {' '.join(args)}:\n" + "\n".join(findings) + "\n" + shown


def cert_text(path):
    return ("x509", "-in", path, "-noout", "-text")


def crl_text(path):
    return ("crl", "-inform", "DER", "-in", path, "-noout", "-text")


def ocsp_text(path):
    return ("ocsp", "-respin", path, "-resp_text", "-noverify")


def openssl(*args):
    out = subprocess.run(["openssl", *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def local(server, url):
    """The certificate's `url` (under BASE_URL) fetched from the test server."""
    assert url.startswith(BASE_URL + "/"), url
    with urllib.request.urlopen(server.endpoint + url[len(BASE_URL):]) as resp:
        return resp.read()


def url_after(text, label):
    return text[text.index(label) + len(label):].split()[0]


def crl_url(text):
    """The CRL distribution point in `openssl x509 -text` output."""
    return url_after(text[text.index("CRL Distribution Points"):], "URI:")


@pytest.fixture(scope="module")
def server():
    s = Server(dev=True, env={"CARAPACE_BASE_URL": BASE_URL, "CARAPACE_CA_COUNTRY": "DE"})
    yield s
    s.stop()


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="carapace-pkilint-") as d:
        yield d


def issue(server, key_algorithm, export=False):
    acm = server.client("acm")
    options = {"Export": "ENABLED"} if export else {}
    arn = acm.request_certificate(
        DomainName="lint.carapace.example.com",
        SubjectAlternativeNames=["lint.carapace.example.com", "www.lint.carapace.example.com"],
        KeyAlgorithm=key_algorithm,
        Options=options,
    )["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    got = acm.get_certificate(CertificateArn=arn)
    intermediate, root = PEM_CERT.findall(got["CertificateChain"])
    return arn, got["Certificate"], intermediate, root


def write(workdir, name, data):
    path = os.path.join(workdir, name)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


@pytest.mark.parametrize("key_algorithm", KEY_ALGORITHMS)
def test_leaf_chain_and_crls_have_no_errors(server, workdir, key_algorithm):
    _, leaf_pem, inter_pem, root_pem = issue(server, key_algorithm)
    leaf = write(workdir, f"{key_algorithm}-leaf.pem", leaf_pem)
    inter = write(workdir, f"{key_algorithm}-intermediate.pem", inter_pem)
    root = write(workdir, f"{key_algorithm}-root.pem", root_pem)
    openssl("verify", "-CAfile", root, "-untrusted", inter, leaf)

    assert_clean("lint_cabf_serverauth_cert", "-t", "DV-FINAL-CERTIFICATE", leaf, show=[cert_text(leaf)])
    assert_clean("lint_cabf_serverauth_cert", "-t", "INTERNAL-UNCONSTRAINED-TLS-CA", inter, show=[cert_text(inter)])
    assert_clean("lint_cabf_serverauth_cert", "-t", "ROOT-CA", root, show=[cert_text(root)])
    for cert in (leaf, inter, root):
        assert_clean("lint_pkix_cert", cert, show=[cert_text(cert)])
    # pkilint's own reading of each certificate's type agrees with the one linted.
    for cert, expected in ((leaf, "DV-FINAL-CERTIFICATE"), (inter, "INTERNAL-UNCONSTRAINED-TLS-CA"), (root, "ROOT-CA")):
        out = subprocess.run(["lint_cabf_serverauth_cert", "lint", "-d", "-o", cert], capture_output=True, text=True)
        assert expected in out.stderr, f"{cert}: {out.stderr}"

    # Each signer/signee pair: names, key identifiers, validity nesting.
    assert_clean("lint_pkix_signer_signee_cert_chain", inter, leaf)
    assert_clean("lint_pkix_signer_signee_cert_chain", root, inter)

    # The intermediate's CRL (named by the leaf) and the root's (named by the intermediate).
    leaf_text = openssl("x509", "-in", leaf, "-noout", "-text")
    inter_text = openssl("x509", "-in", inter, "-noout", "-text")
    leaf_crl = write(workdir, f"{key_algorithm}-intermediate.crl", local(server, crl_url(leaf_text)))
    root_crl = write(workdir, f"{key_algorithm}-root.crl", local(server, crl_url(inter_text)))
    assert_clean("lint_crl", "-t", "CRL", "-p", "BR", leaf_crl, show=[crl_text(leaf_crl)])
    # The root's CRL lists CA certificates: an authority revocation list (RFC 5280 §5).
    assert_clean("lint_crl", "-t", "ARL", "-p", "BR", root_crl, show=[crl_text(root_crl)])
    # Both verify, and the chain passes a CRL check at both levels.
    for crl in (leaf_crl, root_crl):
        openssl("crl", "-inform", "DER", "-in", crl, "-out", crl + ".pem")
    openssl(
        "verify", "-crl_check_all", "-CRLfile", leaf_crl + ".pem", "-CRLfile", root_crl + ".pem",
        "-CAfile", root, "-untrusted", inter, leaf,
    )

    # The intermediate's caIssuers is the root.
    root_der = write(workdir, f"{key_algorithm}-root-aia.der", local(server, url_after(inter_text, "CA Issuers - URI:")))
    assert openssl("x509", "-inform", "DER", "-in", root_der).strip() == root_pem.strip()


@pytest.mark.parametrize("key_algorithm", ["RSA_2048", "EC_prime256v1"])
def test_n2_leaf_intermediate_roots_and_cross_certificate_have_no_errors(server, workdir, key_algorithm):
    """An `N2_SFG2_AMAZON_MANAGED` certificate's chain: the leaf (serverAuth and clientAuth),
    the N2 intermediate, the N2 root cross-signed by the main root (an internal cross CA), the
    main root; and the self-signed N2 root as a root CA."""
    acm = server.client("acm")
    arn = acm.request_certificate(
        DomainName="n2.lint.carapace.example.com",
        KeyAlgorithm=key_algorithm,
        ValidationMethod="DNS",
        RootHierarchyType="N2_SFG2_AMAZON_MANAGED",
    )["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    got = acm.get_certificate(CertificateArn=arn)
    inter_pem, cross_pem, root_pem = PEM_CERT.findall(got["CertificateChain"])
    leaf = write(workdir, f"n2-{key_algorithm}-leaf.pem", got["Certificate"])
    inter = write(workdir, f"n2-{key_algorithm}-intermediate.pem", inter_pem)
    cross = write(workdir, f"n2-{key_algorithm}-cross.pem", cross_pem)
    root = write(workdir, f"n2-{key_algorithm}-root.pem", root_pem)
    n2_root = write(workdir, "n2-root.pem", local(server, BASE_URL + "/ca/n2-root.pem").decode())
    chain = write(workdir, f"n2-{key_algorithm}-chain.pem", inter_pem + cross_pem)
    openssl("verify", "-CAfile", root, "-untrusted", chain, leaf)
    openssl("verify", "-CAfile", n2_root, "-untrusted", inter, leaf)

    assert_clean("lint_cabf_serverauth_cert", "-t", "DV-FINAL-CERTIFICATE", leaf, show=[cert_text(leaf)])
    assert_clean("lint_cabf_serverauth_cert", "-t", "INTERNAL-UNCONSTRAINED-TLS-CA", inter, show=[cert_text(inter)])
    assert_clean("lint_cabf_serverauth_cert", "-t", "INTERNAL-CROSS-CA", cross, show=[cert_text(cross)])
    assert_clean("lint_cabf_serverauth_cert", "-t", "ROOT-CA", n2_root, show=[cert_text(n2_root)])
    for cert in (leaf, inter, cross, n2_root):
        assert_clean("lint_pkix_cert", cert, show=[cert_text(cert)])
    assert_clean("lint_pkix_signer_signee_cert_chain", inter, leaf)
    assert_clean("lint_pkix_signer_signee_cert_chain", cross, inter)
    assert_clean("lint_pkix_signer_signee_cert_chain", n2_root, inter)
    assert_clean("lint_pkix_signer_signee_cert_chain", root, cross)

    # The N2 intermediate's CRL is signed by the N2 root and lints as an ARL.
    inter_text = openssl("x509", "-in", inter, "-noout", "-text")
    n2_crl = write(workdir, f"n2-{key_algorithm}-root.crl", local(server, crl_url(inter_text)))
    assert_clean("lint_crl", "-t", "ARL", "-p", "BR", n2_crl, show=[crl_text(n2_crl)])
    openssl("crl", "-inform", "DER", "-in", n2_crl, "-CAfile", n2_root, "-noout")


def ocsp_response(server, workdir, name, inter, leaf):
    request = os.path.join(workdir, f"{name}.req")
    openssl("ocsp", "-issuer", inter, "-cert", leaf, "-reqout", request)
    with open(request, "rb") as f:
        body = f.read()
    req = urllib.request.Request(
        server.endpoint + "/ocsp", data=body, headers={"Content-Type": "application/ocsp-request"}
    )
    with urllib.request.urlopen(req) as resp:
        return write(workdir, f"{name}.resp", resp.read())


def test_ocsp_answers_and_a_crl_with_an_entry_have_no_errors(server, workdir):
    for key_algorithm in ("RSA_2048", "EC_prime256v1"):
        arn, leaf_pem, inter_pem, root_pem = issue(server, key_algorithm, export=True)
        leaf = write(workdir, f"ocsp-{key_algorithm}-leaf.pem", leaf_pem)
        inter = write(workdir, f"ocsp-{key_algorithm}-intermediate.pem", inter_pem)
        good = ocsp_response(server, workdir, f"good-{key_algorithm}", inter, leaf)
        assert "Cert Status: good" in openssl(*ocsp_text(good))
        assert_clean("lint_ocsp_response", good, show=[ocsp_text(good)])

        acm = server.client("acm")
        acm.export_certificate(CertificateArn=arn, Passphrase=b"passphrase1")
        acm.revoke_certificate(CertificateArn=arn, RevocationReason="KEY_COMPROMISE")
        revoked = ocsp_response(server, workdir, f"revoked-{key_algorithm}", inter, leaf)
        assert "Cert Status: revoked" in openssl(*ocsp_text(revoked))
        assert_clean("lint_ocsp_response", revoked, show=[ocsp_text(revoked)])

        leaf_text = openssl("x509", "-in", leaf, "-noout", "-text")
        crl = write(workdir, f"revoked-{key_algorithm}.crl", local(server, crl_url(leaf_text)))
        listed = openssl(*crl_text(crl))
        assert "Key Compromise" in listed, listed
        assert_clean("lint_crl", "-t", "CRL", "-p", "BR", crl, show=[crl_text(crl)])


# An operator's CA as openssl makes one with a minimal configuration: no countryName, an
# organizationalUnitName, and none of the subordinate CA's policies, CRL distribution point,
# EKU or AIA.
OPENSSL_CA_CONFIG = """[req]
distinguished_name = dn
[dn]
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

# What both pkilint and `carapace ca import` find in that intermediate, by pkilint's codes.
INTERMEDIATE_FINDINGS = [
    "cabf.serverauth.ca.country_attribute_absent",
    "cabf.serverauth.ca.organizational_unit_name_attribute_present",
    "cabf.serverauth.ca.certificate_policies_extension_absent",
    "cabf.serverauth.ca.crl_distribution_points_extension_absent",
    "cabf.serverauth.ca.extended_key_usage_extension_absent",
]


def test_ca_import_prints_what_the_baseline_requirements_find_and_imports_anyway(tmp_path):
    d = str(tmp_path)
    write(d, "ca.cnf", OPENSSL_CA_CONFIG)
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", f"{d}/root.key")
    openssl("req", "-x509", "-new", "-key", f"{d}/root.key", "-subj", "/C=DE/O=Example Corp/CN=Example Root",
        "-days", "3650", "-config", f"{d}/ca.cnf", "-extensions", "root", "-out", f"{d}/root.pem")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{d}/inter.key")
    openssl("req", "-new", "-key", f"{d}/inter.key", "-subj", "/O=Example Corp/OU=PKI/CN=Example Issuing CA",
        "-config", f"{d}/ca.cnf", "-out", f"{d}/inter.csr")
    openssl("x509", "-req", "-in", f"{d}/inter.csr", "-CA", f"{d}/root.pem", "-CAkey", f"{d}/root.key",
        "-CAcreateserial", "-days", "1825", "-extfile", f"{d}/ca.cnf", "-extensions", "intermediate",
        "-out", f"{d}/inter.pem")

    out = subprocess.run(
        [BIN, "ca", "import", "--data-dir", f"{d}/data", "--root", f"{d}/root.pem",
         "--intermediate", f"{d}/inter.pem", "--key", f"{d}/inter.key"],
        capture_output=True, text=True, env=dict(os.environ, RUST_LOG="warn"),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    printed = out.stdout
    assert "imported; new certificates chain to" in printed, printed
    for code in INTERMEDIATE_FINDINGS:
        assert f"intermediate: ERROR {code}:" in printed, f"{code} not printed:\n{printed}"
    assert "root: WARNING cabf.serverauth.root.authority_key_identifier_extension_absent" in printed, printed
    assert "root: ERROR" not in printed, printed

    # pkilint reports the same errors under the same codes.
    found = lint("lint_cabf_serverauth_cert", "-t", "INTERNAL-UNCONSTRAINED-TLS-CA", f"{d}/inter.pem")
    for code in INTERMEDIATE_FINDINGS:
        assert any(f" {code} " in f for f in found), f"pkilint does not report {code}: {found}"
    assert not lint("lint_cabf_serverauth_cert", "-t", "ROOT-CA", f"{d}/root.pem")
