"""DNS validation for real: boto3 against a strict Carapace that looks validation CNAMEs up
on an authoritative DNS server (dnslib) running in this process on loopback.

The `certificate_validated` waiter must fail while the records are missing and succeed once
they are published. A Lightsail certificate walks its whole life on the same server:
CNAME published → ISSUED → distribution → attach → update → detach → delete, every
operation polled with GetOperation as Terraform's provider polls it.
"""

import threading
import time

import botocore.exceptions
import pytest
from dnslib import CNAME, QTYPE, RR, DNSLabel
from dnslib.server import BaseResolver, DNSServer

from conftest import Server


class ZoneResolver(BaseResolver):
    """Answers from a dict {(name, qtype): [rdata]} the test edits; NODATA otherwise."""

    def __init__(self):
        self.records = {}
        self.lock = threading.Lock()

    def set_cname(self, name, target):
        with self.lock:
            self.records[(name.lower().rstrip(".") + ".", "CNAME")] = [CNAME(target)]

    def resolve(self, request, handler):
        reply = request.reply()
        reply.header.aa = 1
        qname = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            found = list(self.records.get((qname, qtype), []))
        for rdata in found:
            reply.add_answer(RR(DNSLabel(qname), getattr(QTYPE, qtype), rdata=rdata, ttl=0))
        return reply


@pytest.fixture(scope="module")
def dns():
    resolver = ZoneResolver()
    server = DNSServer(resolver, port=0, address="127.0.0.1")
    server.start_thread()
    port = server.server.server_address[1]
    yield resolver, port
    server.stop()


@pytest.fixture(scope="module")
def validating_server(dns):
    _, port = dns
    server = Server(
        dev=False,
        env={
            "CARAPACE_ACM_NAME_SERVERS": f'["127.0.0.1:{port}"]',
            "CARAPACE_ACM_VALIDATION_RETRY_MIN_MS": "200",
            "CARAPACE_ACM_VALIDATION_RETRY_MAX_MS": "1000",
            "CARAPACE_ACM_DNS_TIMEOUT_MS": "1000",
            "CARAPACE_LIGHTSAIL_ORIGINS": "web=http://127.0.0.1:9",
        },
    )
    yield server
    server.stop()


def test_waiter_succeeds_only_once_records_exist(dns, validating_server):
    resolver, _ = dns
    key, secret, _ = validating_server.admin_credentials()
    acm = validating_server.client("acm", key=key, secret=secret)
    arn = acm.request_certificate(
        DomainName="waiter.example.com",
        SubjectAlternativeNames=["*.waiter.example.com", "api.example.com"],
        ValidationMethod="DNS",
    )["CertificateArn"]
    options = acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"]
    records = {o["DomainName"]: o["ResourceRecord"] for o in options}
    assert records["*.waiter.example.com"] == records["waiter.example.com"], "wildcard shares the base record"
    assert records["api.example.com"] != records["waiter.example.com"]

    waiter = acm.get_waiter("certificate_validated")
    with pytest.raises(botocore.exceptions.WaiterError):
        waiter.wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "PENDING_VALIDATION"

    # One record published: still pending (the other domain is not validated).
    rr = records["waiter.example.com"]
    resolver.set_cname(rr["Name"], rr["Value"])
    with pytest.raises(botocore.exceptions.WaiterError):
        waiter.wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    statuses = {o["DomainName"]: o["ValidationStatus"] for o in detail["DomainValidationOptions"]}
    assert statuses == {
        "waiter.example.com": "SUCCESS",
        "*.waiter.example.com": "SUCCESS",
        "api.example.com": "PENDING_VALIDATION",
    }

    # A wrong value does not validate.
    other = records["api.example.com"]
    resolver.set_cname(other["Name"], "_0000.wrong.example.")
    with pytest.raises(botocore.exceptions.WaiterError):
        waiter.wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 2})

    resolver.set_cname(other["Name"], other["Value"])
    waiter.wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert detail["Status"] == "ISSUED"
    assert sorted(detail["SubjectAlternativeNames"]) == ["*.waiter.example.com", "api.example.com", "waiter.example.com"]

    # A second certificate for an already validated domain issues at once (records reused).
    arn2 = acm.request_certificate(DomainName="waiter.example.com", ValidationMethod="DNS")["CertificateArn"]
    waiter.wait(CertificateArn=arn2, WaiterConfig={"Delay": 1, "MaxAttempts": 15})


def wait_operations(client, operations):
    """Terraform's waiter: Started is pending; Succeeded or Completed is done."""
    for op in operations:
        for _ in range(100):
            got = client.get_operation(operationId=op["id"])["operation"]
            if got["status"] in ("Succeeded", "Completed"):
                break
            assert got["status"] == "Started", got
            time.sleep(0.1)
        else:
            raise AssertionError(f"operation {op['id']} did not finish")


def test_lightsail_whole_life_with_real_dns(dns, validating_server):
    resolver, _ = dns
    key, secret, _ = validating_server.admin_credentials()
    ls = validating_server.client("lightsail", key=key, secret=secret)
    created = ls.create_certificate(
        certificateName="life-cert", domainName="life.example.com", subjectAlternativeNames=["www.life.example.com"]
    )
    wait_operations(ls, created["operations"])
    detail = created["certificate"]["certificateDetail"]
    assert detail["status"] == "PENDING_VALIDATION"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ls.create_distribution(
            distributionName="life", origin={"name": "web", "regionName": "us-east-1"},
            defaultCacheBehavior={"behavior": "cache"}, bundleId="small_1_0", certificateName="life-cert",
        )
    assert e.value.response["Error"]["Code"] == "InvalidInputException"

    # The CNAMEs appear on the DNS server; the validation worker finds them.
    for record in detail["domainValidationRecords"]:
        resolver.set_cname(record["resourceRecord"]["name"], record["resourceRecord"]["value"])
    for _ in range(150):
        status = ls.get_certificates(certificateName="life-cert")["certificates"][0]["certificateDetail"]["status"]
        if status == "ISSUED":
            break
        time.sleep(0.2)
    assert status == "ISSUED"

    created = ls.create_distribution(
        distributionName="life", origin={"name": "web", "regionName": "us-east-1"},
        defaultCacheBehavior={"behavior": "cache"}, bundleId="small_1_0",
    )
    wait_operations(ls, [created["operation"]])
    wait_operations(ls, [ls.attach_certificate_to_distribution(distributionName="life", certificateName="life-cert")["operation"]])
    d = ls.get_distributions(distributionName="life")["distributions"][0]
    assert d["certificateName"] == "life-cert"
    assert d["alternativeDomainNames"] == ["life.example.com", "www.life.example.com"]
    wait_operations(ls, [ls.update_distribution(distributionName="life", isEnabled=False)["operation"]])
    assert ls.get_distributions(distributionName="life")["distributions"][0]["isEnabled"] is False
    wait_operations(ls, [ls.detach_certificate_from_distribution(distributionName="life")["operation"]])
    wait_operations(ls, [ls.delete_distribution(distributionName="life")["operation"]])
    wait_operations(ls, ls.delete_certificate(certificateName="life-cert")["operations"])
    assert ls.get_certificates()["certificates"] == []
