"""Lightsail certificates, distributions and operations through boto3 and the AWS CLI,
against one --dev server whose origins are declared by CARAPACE_LIGHTSAIL_ORIGINS.

(The whole life outside --dev, with a real DNS server, is in test_validation.py, which
already runs one.)
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time

import botocore.exceptions
import pytest

from conftest import Server

ALICE = "111111111111"
DOCS = "https://lightsail.aws.amazon.com/ls/docs"
AWS = os.path.join(os.path.dirname(sys.executable), "aws")
if not os.path.exists(AWS):
    AWS = shutil.which("aws") or "aws"


@pytest.fixture(scope="module")
def server():
    s = Server(
        dev=True,
        env={
            "CARAPACE_LIGHTSAIL_ORIGINS": "web=http://127.0.0.1:9,secure=https://origin.example.com",
            "CARAPACE_ACM_DEV_AUTO_APPROVE_MS": "200",
        },
    )
    yield s
    s.stop()


def ls(server, account=ALICE, region="us-east-1"):
    return server.client("lightsail", key=account, region=region)


def error(excinfo):
    """(exception, Lightsail code, message, whole error response) of a ClientError."""
    r = excinfo.value.response
    return r["Error"]["Code"], r.get("code"), r["Error"].get("Message"), r


def wait_issued(client, name):
    """Polls GetCertificates until the certificate is ISSUED (the --dev auto-approval)."""
    for _ in range(100):
        cert = client.get_certificates(certificateName=name)["certificates"][0]["certificateDetail"]
        if cert["status"] == "ISSUED":
            return cert
        time.sleep(0.1)
    raise AssertionError(f"{name} was not issued")


def wait_operation(client, op):
    """Polls GetOperation like Terraform's provider: Started is pending, Succeeded done."""
    for _ in range(50):
        got = client.get_operation(operationId=op["id"])["operation"]
        if got["status"] in ("Succeeded", "Completed"):
            return got
        assert got["status"] == "Started", got
        time.sleep(0.1)
    raise AssertionError("operation did not finish")


def wait_deployed(client, name):
    """Polls until the running edge has applied the distribution's latest change."""
    deadline = time.time() + 30
    while True:
        got = client.get_distributions(distributionName=name)["distributions"][0]
        if got["status"] == "Deployed":
            return got
        assert got["status"] == "InProgress", got["status"]
        assert time.time() < deadline, f"{name} not Deployed within 30 s"
        time.sleep(0.05)


def new_distribution(client, name, **extra):
    args = dict(
        distributionName=name,
        origin={"name": "web", "regionName": "us-east-1", "protocolPolicy": "http-only"},
        defaultCacheBehavior={"behavior": "cache"},
        bundleId="small_1_0",
    )
    args.update(extra)
    return client.create_distribution(**args)


def test_certificate_lifecycle(server):
    c = ls(server)
    created = c.create_certificate(
        certificateName="site-cert",
        domainName="example.com",
        subjectAlternativeNames=["www.example.com", "example.com"],
        tags=[{"key": "env", "value": "test"}],
    )
    (op,) = created["operations"]
    assert (op["operationType"], op["resourceType"], op["resourceName"]) == ("CreateCertificate", "Certificate", "site-cert")
    assert op["status"] == "Started" and op["isTerminal"] is False
    assert op["location"] == {"availabilityZone": "all", "regionName": "us-east-1"}
    summary = created["certificate"]
    assert re.fullmatch(r"arn:aws:lightsail:us-east-1:111111111111:Certificate/[0-9a-f-]{36}", summary["certificateArn"])
    detail = summary["certificateDetail"]
    assert detail["subjectAlternativeNames"] == ["example.com", "www.example.com"], "the domain is one of the SANs, once"
    assert detail["keyAlgorithm"] == "RSA-2048"
    records = detail["domainValidationRecords"]
    assert [r["domainName"] for r in records] == ["example.com", "www.example.com"]
    assert records[0]["resourceRecord"]["type"] == "CNAME" and records[0]["resourceRecord"]["name"].endswith(".example.com.")
    assert wait_operation(c, op)["status"] == "Succeeded"

    issued = wait_issued(c, "site-cert")
    for member in ("serialNumber", "issuedAt", "notBefore", "notAfter", "issuerCA", "supportCode", "createdAt"):
        assert member in issued, member
    assert issued["inUseResourceCount"] == 0 and issued["eligibleToRenew"] == "INELIGIBLE"
    assert issued["tags"] == [{"key": "env", "value": "test"}]

    # Without includeCertificateDetails a listing has only the summary members.
    listed = c.get_certificates()["certificates"]
    assert [set(s) for s in listed] == [{"certificateArn", "certificateName", "domainName", "tags"}]
    with_details = c.get_certificates(includeCertificateDetails=True, certificateStatuses=["ISSUED"])["certificates"]
    assert with_details[0]["certificateDetail"]["status"] == "ISSUED"
    assert c.get_certificates(certificateStatuses=["PENDING_VALIDATION"])["certificates"] == []
    assert c.get_certificates(certificateName="nope")["certificates"] == []
    # Lightsail certificates are not ACM's to list.
    acm = server.client("acm", key=ALICE)
    assert acm.list_certificates()["CertificateSummaryList"] == []

    assert c.delete_certificate(certificateName="site-cert")["operations"][0]["operationType"] == "DeleteCertificate"
    assert c.get_certificates()["certificates"] == []


def test_errors_carry_lightsails_envelope(server):
    c = ls(server)
    c.create_certificate(certificateName="dup", domainName="dup.example.com")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_certificate(certificateName="dup", domainName="other.example.com")
    exc, code, message, r = error(e)
    assert (exc, code, message) == ("InvalidInputException", "NameExists", "Some names are already in use: dup")
    assert r["docs"] == DOCS and r["tip"]
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 400

    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_certificate(certificateName="wild", domainName="*.example.com")
    assert error(e)[:2] == ("InvalidInputException", "InvalidDomainName")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_certificate(
            certificateName="many", domainName="a.example.com", subjectAlternativeNames=[f"s{i}.example.com" for i in range(10)]
        )
    assert error(e)[:2] == ("InvalidInputException", "TooManyDomainNames")

    # Distribution APIs exist only in us-east-1, in the words of the model's documentation.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ls(server, region="eu-west-1").get_distributions()
    exc, code, message, r = error(e)
    assert exc == "InvalidInputException" and message.startswith(
        "Domain and distribution APIs are only available in the N. Virginia (us-east-1)"
    )
    # Certificates live in every region.
    assert ls(server, region="eu-west-1").get_certificates()["certificates"] == []

    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_distributions(distributionName="missing")
    exc, code, message, r = error(e)
    assert (exc, code, message) == ("NotFoundException", "DoesNotExist", "The Distribution does not exist: missing")
    assert r["docs"] == DOCS

    with pytest.raises(botocore.exceptions.ClientError) as e:
        new_distribution(c, "bad-origin", origin={"name": "undeclared", "regionName": "us-east-1"})
    assert error(e)[:2] == ("NotFoundException", "DoesNotExist")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        new_distribution(c, "bad-bundle", bundleId="huge_9_9")
    assert error(e)[:2] == ("InvalidInputException", "InvalidBundle")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        new_distribution(c, "waf", enableWaf=True)
    assert "enableWaf" in error(e)[2]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        new_distribution(c, "private", enablePrivateOriginAccess=True)
    assert "enablePrivateOriginAccess" in error(e)[2]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        new_distribution(c, "timeout", origin={"name": "web", "regionName": "us-east-1", "responseTimeout": 61})
    assert error(e)[:2] == ("InvalidInputException", "InvalidResponseTimeout")
    for settings in (
        {"allowedHTTPMethods": "GET,POST"},
        {"allowedHTTPMethods": "GET,HEAD", "cachedHTTPMethods": "GET,HEAD,OPTIONS"},
        {"minimumTTL": 5, "forwardedHeaders": {"option": "all"}},
        {"minimumTTL": 100, "defaultTTL": 10},
    ):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            new_distribution(c, "cache", cacheBehaviorSettings=settings)
        assert error(e)[:2] == ("InvalidInputException", "InvalidCacheSettings"), settings

    # Model-driven validation.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_distributions(distributionName="!")
    exc, _, message, r = error(e)
    assert exc == "ValidationException" and message.startswith("1 validation error detected: Value '!' at 'distributionName'")

    # A pending certificate cannot be attached.
    new_distribution(c, "pending-target")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.attach_certificate_to_distribution(distributionName="pending-target", certificateName="nope")
    assert error(e)[:2] == ("NotFoundException", "DoesNotExist")

    # Every other Lightsail operation is not built, and says so.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_instances()
    assert error(e)[0] == "NotImplementedException" and "GetInstances" in error(e)[2]


def test_distribution_lifecycle(server):
    c = ls(server)
    c.create_certificate(certificateName="cdn-cert", domainName="cdn.example.com", subjectAlternativeNames=["img.example.com"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        new_distribution(c, "early", certificateName="cdn-cert")
    exc, code, message, _ = error(e)
    assert (exc, code) == ("InvalidInputException", "InvalidCertificateStatus") and "ISSUED" in message
    wait_issued(c, "cdn-cert")

    created = new_distribution(
        c,
        "site",
        cacheBehaviorSettings={"defaultTTL": 600, "forwardedCookies": {"option": "allow-list", "cookiesAllowList": ["s"]}},
        cacheBehaviors=[{"path": "/api/*", "behavior": "dont-cache"}],
        defaultRootObject="index.html",
        customErrorResponses=[{"errorCode": 404, "responseCode": "404", "responsePagePath": "/404.html"}],
        subdomainName="mysite",
        tags=[{"key": "team", "value": "web"}],
    )
    d = created["distribution"]
    assert re.fullmatch(r"d[a-z0-9]{13}\.cdn\.carapace\.internal", d["domainName"])
    assert re.fullmatch(r"arn:aws:lightsail:us-east-1:111111111111:Distribution/[0-9a-f-]{36}", d["arn"])
    assert d["subdomain"] == {"name": "mysite", "state": "Attached"}
    assert d["originPublicDNS"] == "127.0.0.1" and d["origin"]["responseTimeout"] == 30
    assert d["location"] == {"availabilityZone": "all", "regionName": "us-east-1"} and d["resourceType"] == "Distribution"
    assert d["cacheBehaviorSettings"]["defaultTTL"] == 600 and d["cacheBehaviorSettings"]["maximumTTL"] == 31536000
    assert d["ableToUpdateBundle"] is True and d["isEnabled"] is True and d["ipAddressType"] == "dualstack"
    wait_operation(c, created["operation"])

    # The edge beside the API applies it within moments: InProgress, then Deployed.
    got = wait_deployed(c, "site")
    assert got["status"] == "Deployed"
    assert got["defaultRootObject"] == "index.html" and got["customErrorResponses"][0]["errorCachingMinTTL"] == 10
    listed = c.get_distributions()["distributions"]
    assert "defaultRootObject" not in listed[-1] and "customErrorResponses" not in listed[-1], "only for one by name"

    # A second distribution cannot take the same subdomain or name.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        new_distribution(c, "site2", subdomainName="mysite")
    assert error(e)[:2] == ("InvalidInputException", "SubdomainInUse")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        new_distribution(c, "site")
    assert error(e)[:2] == ("InvalidInputException", "NameExists")

    op = c.attach_certificate_to_distribution(distributionName="site", certificateName="cdn-cert")["operation"]
    assert op["operationType"] == "AttachCertificateToDistribution"
    wait_operation(c, op)
    got = c.get_distributions(distributionName="site")["distributions"][0]
    assert got["certificateName"] == "cdn-cert"
    assert got["alternativeDomainNames"] == ["cdn.example.com", "img.example.com"]
    cert = c.get_certificates(certificateName="cdn-cert")["certificates"][0]["certificateDetail"]
    assert cert["inUseResourceCount"] == 1 and cert["eligibleToRenew"] == "ELIGIBLE"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_certificate(certificateName="cdn-cert")
    assert error(e)[:2] == ("InvalidInputException", "ResourceInUse")
    # One custom domain, one distribution.
    new_distribution(c, "rival")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.update_distribution(distributionName="rival", certificateName="cdn-cert", useDefaultCertificate=False)
    assert error(e)[:2] == ("InvalidInputException", "DomainInUse")

    # UpdateDistribution replaces cacheBehaviorSettings whole: defaultTTL goes back to its default.
    op = c.update_distribution(
        distributionName="site", cacheBehaviorSettings={"maximumTTL": 7200, "minimumTTL": 0, "defaultTTL": 60}, isEnabled=False
    )["operation"]
    assert op["operationType"] == "UpdateDistribution"
    got = c.get_distributions(distributionName="site")["distributions"][0]
    assert got["cacheBehaviorSettings"]["maximumTTL"] == 7200
    assert got["cacheBehaviorSettings"]["forwardedCookies"]["option"] == "none", "replaced, not merged"
    assert got["isEnabled"] is False and got["certificateName"] == "cdn-cert"
    c.update_distribution(distributionName="site", useDefaultCertificate=True)
    got = c.get_distributions(distributionName="site")["distributions"][0]
    assert "certificateName" not in got and got["alternativeDomainNames"] == []
    c.update_distribution(distributionName="site", certificateName="cdn-cert", useDefaultCertificate=False)
    op = c.detach_certificate_from_distribution(distributionName="site")["operation"]
    assert op["operationType"] == "DetachCertificateFromDistribution"
    cert = c.get_certificates(certificateName="cdn-cert")["certificates"][0]["certificateDetail"]
    assert cert["inUseResourceCount"] == 0

    # Cache resets.
    assert c.get_distribution_latest_cache_reset(distributionName="site").get("createTime") is None
    reset = c.reset_distribution_cache(distributionName="site")
    assert reset["status"] == "InProgress" and reset["operation"]["operationType"] == "ResetDistributionCache"
    # Succeeded once the edge beside the API has purged (moments later).
    deadline = time.time() + 30
    while True:
        latest = c.get_distribution_latest_cache_reset(distributionName="site")
        if latest["status"] == "Succeeded":
            break
        assert latest["status"] == "InProgress" and time.time() < deadline, latest["status"]
        time.sleep(0.05)
    assert latest["createTime"] == reset["createTime"]

    # Bundles.
    bundles = c.get_distribution_bundles()["bundles"]
    assert [b["bundleId"] for b in bundles] == ["small_1_0", "medium_1_0", "large_1_0"]
    assert all(b["isActive"] and b["price"] > 0 and b["transferPerMonthInGb"] > 0 for b in bundles)
    c.update_distribution_bundle(distributionName="site", bundleId="medium_1_0")
    got = c.get_distributions(distributionName="site")["distributions"][0]
    assert got["bundleId"] == "medium_1_0" and got["ableToUpdateBundle"] is False
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.update_distribution_bundle(distributionName="site", bundleId="large_1_0")
    assert error(e)[:2] == ("InvalidInputException", "BundleUpdateNotAllowed")

    # Tags on distributions and certificates.
    # Their operations are named as AWS names them, outside the model's OperationType enum.
    tagged = c.tag_resource(resourceName="site", tags=[{"key": "cost", "value": "1"}])["operations"]
    assert [(o["operationType"], o["resourceName"]) for o in tagged] == [("TagResource", "site")]
    untagged = c.untag_resource(resourceName="site", tagKeys=["team"])["operations"]
    assert [o["operationType"] for o in untagged] == ["UntagResource"]
    assert c.get_distributions(distributionName="site")["distributions"][0]["tags"] == [{"key": "cost", "value": "1"}]
    c.tag_resource(resourceName="cdn-cert", tags=[{"key": "k", "value": "v"}])
    assert c.get_certificates(certificateName="cdn-cert")["certificates"][0]["tags"] == [{"key": "k", "value": "v"}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.tag_resource(resourceName="nothing", tags=[{"key": "k"}])
    assert error(e)[:2] == ("NotFoundException", "DoesNotExist")

    # Metric data: validated, empty until the edge writes counters.
    now = int(time.time())
    metrics = c.get_distribution_metric_data(
        distributionName="site", metricName="Requests", startTime=now - 3600, endTime=now, period=300,
        unit="None", statistics=["Sum"],
    )
    assert metrics["metricName"] == "Requests" and metrics["metricData"] == []
    for bad in ({"period": 90}, {"unit": "Percent"}, {"startTime": now, "endTime": now - 60}):
        args = dict(distributionName="site", metricName="Requests", startTime=now - 3600, endTime=now, period=300,
                    unit="None", statistics=["Sum"])
        args.update(bad)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            c.get_distribution_metric_data(**args)
        assert error(e)[:2] == ("InvalidInputException", "InvalidMetricRequest"), bad

    # Operations: per resource, oldest first.
    ops = c.get_operations_for_resource(resourceName="site")["operations"]
    assert ops[0]["operationType"] == "CreateDistribution"
    assert all(o["resourceName"] == "site" and o["status"] == "Succeeded" for o in ops)
    assert [o["createdAt"] for o in ops] == sorted(o["createdAt"] for o in ops)

    assert c.delete_distribution(distributionName="site")["operation"]["operationType"] == "DeleteDistribution"
    c.delete_distribution(distributionName="rival")
    c.delete_certificate(certificateName="cdn-cert")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_distribution(distributionName="site")
    assert error(e)[:2] == ("NotFoundException", "DoesNotExist")


def test_accounts_are_isolated_and_operations_page(server):
    alice, bob = ls(server, "333333333333"), ls(server, "444444444444")
    new_distribution(alice, "shared-name")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bob.get_distributions(distributionName="shared-name")
    assert error(e)[:2] == ("NotFoundException", "DoesNotExist")
    new_distribution(bob, "shared-name")  # names are per account
    assert bob.get_distributions()["distributions"][0]["name"] == "shared-name"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bob.get_operation(operationId=alice.get_operations()["operations"][0]["id"])
    assert error(e)[0] == "NotFoundException"

    # 205 operations: GetOperations pages 200 at a time, oldest first, each once.
    for i in range(204):
        alice.tag_resource(resourceName="shared-name", tags=[{"key": f"k{i % 40}", "value": str(i)}])
    first = alice.get_operations()
    assert len(first["operations"]) == 200 and "nextPageToken" in first
    second = alice.get_operations(pageToken=first["nextPageToken"])
    assert len(second["operations"]) == 5 and "nextPageToken" not in second
    ids = [o["id"] for o in first["operations"] + second["operations"]]
    assert len(set(ids)) == 205
    assert first["operations"][0]["operationType"] == "CreateDistribution"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bob.get_operations(pageToken=first["nextPageToken"])
    assert error(e)[:2] == ("InvalidInputException", "InvalidPageToken")
    paged = bob.get_paginator("get_operations") if bob.can_paginate("get_operations") else None
    if paged:
        assert sum(len(p["operations"]) for p in paged.paginate()) == 1


def test_regions(server):
    regions = ls(server).get_regions(includeAvailabilityZones=True)["regions"]
    virginia = next(r for r in regions if r["name"] == "us-east-1")
    assert virginia["displayName"] == "Virginia" and virginia["continentCode"] == "NA"
    assert virginia["availabilityZones"][0] == {"zoneName": "us-east-1a", "state": "available"}
    assert ls(server).get_regions()["regions"][0]["availabilityZones"] == []


def aws_cli(server, *args, account="555555555555"):
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
    return json.loads(out.stdout) if out.stdout.strip() else None


def test_aws_cli_create_get_attach_update_delete(server):
    aws_cli(server, "lightsail", "create-certificate", "--certificate-name", "cli-cert", "--domain-name", "cli.example.com")
    for _ in range(100):
        got = aws_cli(server, "lightsail", "get-certificates", "--certificate-name", "cli-cert", "--include-certificate-details")
        if got["certificates"][0]["certificateDetail"]["status"] == "ISSUED":
            break
        time.sleep(0.1)
    created = aws_cli(
        server, "lightsail", "create-distribution", "--distribution-name", "cli-site",
        "--origin", "name=web,regionName=us-east-1,protocolPolicy=http-only",
        "--default-cache-behavior", "behavior=cache", "--bundle-id", "small_1_0",
    )
    assert created["distribution"]["status"] in ("InProgress", "Deployed")
    assert wait_deployed(ls(server, account="555555555555"), "cli-site")["status"] == "Deployed"
    aws_cli(server, "lightsail", "attach-certificate-to-distribution", "--distribution-name", "cli-site", "--certificate-name", "cli-cert")
    aws_cli(
        server, "lightsail", "update-distribution", "--distribution-name", "cli-site",
        "--cache-behavior-settings",
        json.dumps({"defaultTTL": 300, "minimumTTL": 0, "maximumTTL": 3600, "allowedHTTPMethods": "GET,HEAD"}),
    )
    got = aws_cli(server, "lightsail", "get-distributions", "--distribution-name", "cli-site")["distributions"][0]
    assert got["certificateName"] == "cli-cert" and got["cacheBehaviorSettings"]["allowedHTTPMethods"] == "GET,HEAD"
    aws_cli(server, "lightsail", "detach-certificate-from-distribution", "--distribution-name", "cli-site")
    aws_cli(server, "lightsail", "delete-distribution", "--distribution-name", "cli-site")
    aws_cli(server, "lightsail", "delete-certificate", "--certificate-name", "cli-cert")
    assert aws_cli(server, "lightsail", "get-certificates")["certificates"] == []
