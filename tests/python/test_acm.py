"""ACM through boto3 and the AWS CLI against the real binary: the dev-mode waiter, the
paginator, the errors users see, SearchCertificates, ListCertificateDomainValidations, the
generic tagging operations, validation-method changes, strict mode and throttling."""

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import botocore.exceptions
import pytest

from conftest import Server

ALICE = "111111111111"
BOB = "222222222222"
# The AWS CLI installed next to this interpreter (the test venv), else the one on PATH.
AWS = os.path.join(os.path.dirname(sys.executable), "aws")
if not os.path.exists(AWS):
    AWS = shutil.which("aws") or "aws"


def error_of(excinfo):
    err = excinfo.value.response
    return err["Error"]["Code"], err["Error"].get("Message")


@pytest.fixture(scope="module")
def slow_server():
    """--dev with auto-approval far away: certificates stay pending during a test."""
    server = Server(
        dev=True,
        env={
            "CARAPACE_ACM_DEV_AUTO_APPROVE_MS": "3600000",
            "CARAPACE_ACM_CERTIFICATES_PER_ACCOUNT": "20000",
            "CARAPACE_ACM_CERTIFICATES_PER_YEAR": "20000",
        },
    )
    yield server
    server.stop()


def test_waiter_issue_get_delete(dev_server):
    acm = dev_server.client("acm", key=ALICE)
    arn = acm.request_certificate(
        DomainName="waiter.example.com",
        SubjectAlternativeNames=["www.waiter.example.com"],
        ValidationMethod="DNS",
        KeyAlgorithm="EC_prime256v1",
    )["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    cert = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert cert["Status"] == "ISSUED"
    assert cert["KeyAlgorithm"] == "EC-prime256v1"
    assert cert["Type"] == "AMAZON_ISSUED"
    assert cert["InUseBy"] == []
    assert {d["ValidationStatus"] for d in cert["DomainValidationOptions"]} == {"SUCCESS"}
    assert cert["NotAfter"] > cert["NotBefore"]
    assert [k["Name"] for k in cert["KeyUsages"]] == ["DIGITAL_SIGNATURE"]
    got = acm.get_certificate(CertificateArn=arn)
    assert got["Certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert got["CertificateChain"].count("BEGIN CERTIFICATE") == 2
    assert "PrivateKey" not in got
    acm.delete_certificate(CertificateArn=arn)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.get_certificate(CertificateArn=arn)
    assert error_of(e) == ("ResourceNotFoundException", f"Could not find certificate {arn}.")


def test_errors(slow_server):
    acm = slow_server.client("acm", key=ALICE)
    arn = acm.request_certificate(DomainName="errors.example.com", ValidationMethod="DNS")["CertificateArn"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.get_certificate(CertificateArn=arn)
    assert error_of(e) == ("RequestInProgressException", f"Certificate {arn} in account {ALICE} not yet issued")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.describe_certificate(CertificateArn="not-an-arn-but-long-enough")
    code, message = error_of(e)
    assert code == "ValidationException"
    assert message.startswith("1 validation error detected: Value 'not-an-arn-but-long-enough' at 'certificateArn'")
    # Matches the model's pattern but is no certificate ARN (the account is not 12 digits).
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.describe_certificate(CertificateArn="arn:aws:acm:us-east-1:123:nope")
    assert error_of(e)[0] == "InvalidArnException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.delete_certificate(CertificateArn=f"arn:aws:acm:us-east-1:{ALICE}:acme-endpoint/x")
    assert error_of(e)[0] == "InvalidArnException"
    bob = slow_server.client("acm", key=BOB)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bob.describe_certificate(CertificateArn=arn)
    assert error_of(e) == ("ResourceNotFoundException", f"Could not find certificate {arn}.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.request_certificate(DomainName="example.com", SubjectAlternativeNames=[f"n{i}.example.com" for i in range(10)])
    assert error_of(e)[0] == "LimitExceededException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.request_certificate(
            DomainName="www.example.com",
            DomainValidationOptions=[{"DomainName": "www.example.com", "ValidationDomain": "example.net"}],
        )
    assert error_of(e)[0] == "InvalidDomainValidationOptionsException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.request_certificate(DomainName="example.com", KeyAlgorithm="EC_secp521r1")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.add_tags_to_certificate(CertificateArn=arn, Tags=[{"Key": "aws:x", "Value": "y"}])
    assert error_of(e)[0] == "InvalidTagException"
    acm.add_tags_to_certificate(CertificateArn=arn, Tags=[{"Key": f"k{i}"} for i in range(50)])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.add_tags_to_certificate(CertificateArn=arn, Tags=[{"Key": "one-too-many"}])
    assert error_of(e)[0] == "TooManyTagsException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.list_certificates(SortBy="CREATED_AT")
    assert error_of(e)[0] == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.list_certificates(NextToken="garbage")
    assert error_of(e)[0] == "InvalidArgsException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.list_acme_endpoints()
    assert error_of(e)[0] == "NotImplementedException"


def test_pending_describe_has_no_issue_fields(slow_server):
    acm = slow_server.client("acm", key=ALICE)
    arn = acm.request_certificate(DomainName="pending.example.com", ValidationMethod="DNS")["CertificateArn"]
    cert = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert cert["Status"] == "PENDING_VALIDATION"
    for absent in ("Serial", "NotBefore", "NotAfter", "IssuedAt"):
        assert absent not in cert
    assert cert["KeyUsages"] == [] and cert["ExtendedKeyUsages"] == []
    assert cert["KeyAlgorithm"] == "RSA-2048"
    assert cert["RenewalEligibility"] == "INELIGIBLE"
    assert cert["Options"] == {"CertificateTransparencyLoggingPreference": "ENABLED", "Export": "DISABLED"}
    record = cert["DomainValidationOptions"][0]["ResourceRecord"]
    assert record["Type"] == "CNAME" and record["Name"].endswith(".pending.example.com.")
    # The waiter does not succeed while pending.
    with pytest.raises(botocore.exceptions.WaiterError):
        acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 2})


def test_paginator_walks_every_certificate_exactly_once(slow_server):
    """10,000 certificates (pending, so no keys are generated), listed by boto3's paginator
    in ten pages while certificates are added and deleted between pages."""
    acm = slow_server.client("acm", key="333333333333")
    total = int(os.environ.get("CARAPACE_ACM_PAGINATOR_CERTS", "10000"))

    local = threading.local()

    def request(i):
        # One client per thread: building a boto3 client costs more than a request.
        if not hasattr(local, "client"):
            local.client = slow_server.client("acm", key="333333333333")
        return local.client.request_certificate(DomainName=f"p{i}.example.com")["CertificateArn"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        arns = list(pool.map(request, range(total)))
    assert len(set(arns)) == total
    seen = []
    added, deleted = [], []
    paginator = acm.get_paginator("list_certificates")
    for n, page in enumerate(paginator.paginate(PaginationConfig={"PageSize": max(total // 10, 1)})):
        seen.extend(s["CertificateArn"] for s in page["CertificateSummaryList"])
        if n == 0:
            # Churn between pages: a new certificate, and one not yet listed deleted.
            added.append(acm.request_certificate(DomainName="late.example.com")["CertificateArn"])
            deleted.append(sorted(set(arns) - set(seen))[0])
            acm.delete_certificate(CertificateArn=deleted[0])
    assert len(seen) == len(set(seen)), "no certificate listed twice"
    assert set(seen) == (set(arns) - set(deleted)) | set(added)


def test_list_filters_and_summary(slow_server):
    acm = slow_server.client("acm", key="444444444444")
    rsa = acm.request_certificate(DomainName="rsa.example.com")["CertificateArn"]
    ec = acm.request_certificate(DomainName="ec.example.com", KeyAlgorithm="EC_secp384r1")["CertificateArn"]
    default = [s["CertificateArn"] for s in acm.list_certificates()["CertificateSummaryList"]]
    assert default == [rsa], "EC certificates are listed only when asked for"
    ec_only = acm.list_certificates(Includes={"keyTypes": ["EC_secp384r1"]})["CertificateSummaryList"]
    assert [s["CertificateArn"] for s in ec_only] == [ec]
    summary = ec_only[0]
    assert summary["Status"] == "PENDING_VALIDATION"
    assert summary["SubjectAlternativeNameSummaries"] == ["ec.example.com"]
    assert summary["HasAdditionalSubjectAlternativeNames"] is False
    assert summary["InUse"] is False and summary["Exported"] is False
    assert summary["ExportOption"] == "DISABLED"
    issued = acm.list_certificates(CertificateStatuses=["ISSUED"])["CertificateSummaryList"]
    assert issued == []
    newest = acm.list_certificates(
        Includes={"keyTypes": ["RSA_2048", "EC_secp384r1"]}, SortBy="CREATED_AT", SortOrder="DESCENDING"
    )["CertificateSummaryList"]
    assert [s["CertificateArn"] for s in newest] == [ec, rsa]


def test_search_certificates(slow_server):
    acm = slow_server.client("acm", key="555555555555")
    a = acm.request_certificate(DomainName="alpha.search.example.com", ValidationMethod="DNS")["CertificateArn"]
    b = acm.request_certificate(DomainName="beta.search.example.com", KeyAlgorithm="EC_prime256v1")["CertificateArn"]
    by_name = acm.search_certificates(
        FilterStatement={
            "Filter": {
                "X509AttributeFilter": {"SubjectAlternativeName": {"DnsName": {"Value": "alpha", "ComparisonOperator": "CONTAINS"}}}
            }
        }
    )["Results"]
    assert [r["CertificateArn"] for r in by_name] == [a]
    assert by_name[0]["CertificateMetadata"]["AcmCertificateMetadata"]["Status"] == "PENDING_VALIDATION"
    assert by_name[0]["X509Attributes"]["SubjectAlternativeNames"] == [{"DnsName": "alpha.search.example.com"}]
    either = acm.search_certificates(
        FilterStatement={
            "Or": [
                {"Filter": {"X509AttributeFilter": {"KeyAlgorithm": "EC_prime256v1"}}},
                {"Filter": {"AcmCertificateMetadataFilter": {"ValidationMethod": "DNS"}}},
            ]
        },
        SortBy="COMMON_NAME",
        SortOrder="DESCENDING",
    )["Results"]
    assert [r["CertificateArn"] for r in either] == [b, a]
    page1 = acm.search_certificates(MaxResults=1)
    assert len(page1["Results"]) == 1 and "NextToken" in page1
    page2 = acm.search_certificates(MaxResults=1, NextToken=page1["NextToken"])
    assert [r["CertificateArn"] for r in page1["Results"] + page2["Results"]] == [a, b]
    assert "NextToken" not in page2


def test_domain_validations_and_method_change(slow_server):
    acm = slow_server.client("acm", key="666666666666")
    arn = acm.request_certificate(DomainName="dv.example.com", SubjectAlternativeNames=["www.dv.example.com"])[
        "CertificateArn"
    ]
    page = acm.list_certificate_domain_validations(CertificateArn=arn, MaxItems=1)
    first = page["DomainValidationSummaryList"][0]
    assert first["DomainName"] == "dv.example.com"
    active = first["ActiveValidationConfiguration"]
    assert active["ValidationMethod"] == "EMAIL"
    assert "admin@dv.example.com" in active["ValidationChallenge"]["EmailValidationChallenge"]["ValidationEmails"]
    rest = acm.list_certificate_domain_validations(CertificateArn=arn, MaxItems=1, NextToken=page["NextToken"])
    assert rest["DomainValidationSummaryList"][0]["DomainName"] == "www.dv.example.com"
    assert "NextToken" not in rest
    acm.resend_validation_email(CertificateArn=arn, Domain="www.dv.example.com", ValidationDomain="dv.example.com")
    # A pending request switches to DNS at once.
    acm.update_certificate_options(CertificateArn=arn, Options={"ValidationMethod": "DNS"})
    cert = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert all(d["ValidationMethod"] == "DNS" and "ResourceRecord" in d for d in cert["DomainValidationOptions"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.resend_validation_email(CertificateArn=arn, Domain="dv.example.com", ValidationDomain="dv.example.com")
    assert error_of(e)[0] == "InvalidStateException"


def test_http_validation_for_cloudfront(slow_server):
    acm = slow_server.client("acm", key="999999999999")
    arn = acm.request_certificate(DomainName="cdn.example.com", ValidationMethod="HTTP", ManagedBy="CLOUDFRONT")[
        "CertificateArn"
    ]
    cert = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert cert["ManagedBy"] == "CLOUDFRONT"
    redirect = cert["DomainValidationOptions"][0]["HttpRedirect"]
    assert redirect["RedirectFrom"].startswith("http://cdn.example.com/.well-known/pki-validation/")
    assert redirect["RedirectTo"].startswith(slow_server.endpoint)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.request_certificate(DomainName="cdn.example.com", ValidationMethod="HTTP")
    assert error_of(e)[0] == "InvalidParameterException"


def test_generic_tagging_operations(slow_server):
    acm = slow_server.client("acm", key="777777777777")
    arn = acm.request_certificate(DomainName="tagged.example.com", Tags=[{"Key": "a", "Value": "1"}])["CertificateArn"]
    acm.tag_resource(ResourceArn=arn, Tags=[{"Key": "b", "Value": "2"}])
    acm.untag_resource(ResourceArn=arn, TagKeys=["a"])
    assert acm.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.list_tags_for_resource(ResourceArn=f"arn:aws:acm:us-east-1:777777777777:acme-endpoint/e-1")
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_export_and_exported_flag(dev_server):
    acm = dev_server.client("acm", key="888888888888")
    arn = acm.request_certificate(
        DomainName="export.example.com", KeyAlgorithm="EC_prime256v1", Options={"Export": "ENABLED"}
    )["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    out = acm.export_certificate(CertificateArn=arn, Passphrase=b"s3cret-pass")
    assert out["PrivateKey"].startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    opened = subprocess.run(
        ["openssl", "pkey", "-passin", "pass:s3cret-pass", "-noout"], input=out["PrivateKey"], text=True, capture_output=True
    )
    assert opened.returncode == 0, opened.stderr
    summaries = acm.list_certificates(Includes={"keyTypes": ["EC_prime256v1"]})["CertificateSummaryList"]
    assert [s["Exported"] for s in summaries if s["CertificateArn"] == arn] == [True]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.export_certificate(CertificateArn=arn, Passphrase=b"bad#pass")
    assert error_of(e)[0] == "ValidationException"


def aws_cli(server, *args, account=ALICE):
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


def test_aws_cli_request_wait_describe_list(dev_server):
    arn = aws_cli(
        dev_server,
        "acm", "request-certificate", "--domain-name", "cli.example.com", "--validation-method", "DNS",
        "--query", "CertificateArn", "--output", "text",
    ).strip()
    aws_cli(dev_server, "acm", "wait", "certificate-validated", "--certificate-arn", arn)
    status = aws_cli(
        dev_server, "acm", "describe-certificate", "--certificate-arn", arn, "--query", "Certificate.Status", "--output", "text"
    )
    assert status.strip() == "ISSUED"
    listed = json.loads(aws_cli(dev_server, "acm", "list-certificates", "--certificate-statuses", "ISSUED"))
    assert arn in [s["CertificateArn"] for s in listed["CertificateSummaryList"]]
    aws_cli(dev_server, "acm", "delete-certificate", "--certificate-arn", arn)


def test_strict_mode_stays_pending(strict_server):
    key, secret, account = strict_server.admin_credentials()
    acm = strict_server.client("acm", key=key, secret=secret)
    arn = acm.request_certificate(DomainName="strict.example.com", ValidationMethod="DNS")["CertificateArn"]
    assert f":{account}:certificate/" in arn
    time.sleep(1.0)
    cert = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert cert["Status"] == "PENDING_VALIDATION"
    assert cert["DomainValidationOptions"][0]["ResourceRecord"]["Value"].endswith(".acm-validations.carapace.internal.")


def test_throttling_when_enabled():
    server = Server(dev=False, env={"CARAPACE_ACM_THROTTLING": "true"})
    try:
        key, secret, _ = server.admin_credentials()
        acm = server.client("acm", key=key, secret=secret)
        acm.list_certificates()
        with pytest.raises(botocore.exceptions.ClientError) as e:
            acm.list_certificates()
        assert error_of(e) == ("ThrottlingException", "Rate exceeded")
        time.sleep(1.1)
        acm.list_certificates()
    finally:
        server.stop()
