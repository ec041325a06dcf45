"""The wire layer through boto3: authentication, errors, validation, both DS protocols."""

import datetime
import json
import os
import stat
import time
import urllib.error
import urllib.request

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.session
import pytest


def error_of(excinfo):
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"].get("Message")


def test_first_start_writes_admin_credentials_0600_and_never_prints_the_secret(strict_server):
    path = os.path.join(strict_server.data_dir, "admin-credentials")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key, secret, account = strict_server.admin_credentials()
    assert key.startswith("AKIA") and len(secret) == 40 and len(account) == 12
    printed = "".join(strict_server.stdout_lines + strict_server.stderr_lines)
    assert path in printed
    assert secret not in printed


def test_real_keys_work(strict_server):
    key, secret, _ = strict_server.admin_credentials()
    acm = strict_server.client("acm", key=key, secret=secret)
    assert acm.list_certificates()["CertificateSummaryList"] == []


def test_wrong_secret_is_invalid_signature(strict_server):
    key, _, _ = strict_server.admin_credentials()
    acm = strict_server.client("acm", key=key, secret="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.list_certificates()
    code, status, message = error_of(e)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert message.startswith("The request signature we calculated does not match the signature you provided.")


def test_unknown_key_is_unrecognized_client(strict_server):
    acm = strict_server.client("acm", key="AKIAUNKNOWNUNKNOWN00", secret="x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.list_certificates()
    assert error_of(e) == ("UnrecognizedClientException", 403, "The security token included in the request is invalid.")


def signed_request(server, key, secret, target, body, when=None, service="acm"):
    """A botocore-signed awsJson1.1 request, optionally signed at another time."""
    request = botocore.awsrequest.AWSRequest(
        method="POST",
        url=server.endpoint + "/",
        data=body,
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
    )
    auth = botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), service, "us-east-1")
    if when is not None:
        original = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda: when
        try:
            auth.add_auth(request)
        finally:
            botocore.auth.get_current_datetime = original
    else:
        auth.add_auth(request)
    return request.prepare()


def send(prepared, body=None):
    req = urllib.request.Request(
        prepared.url, data=body if body is not None else prepared.body, headers=dict(prepared.headers), method="POST"
    )
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read() or b"{}"), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}"), err.headers


def test_skewed_clock_is_signature_expired(strict_server):
    key, secret, _ = strict_server.admin_credentials()
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
    status, body, _ = send(signed_request(strict_server, key, secret, "CertificateManager.ListCertificates", b"{}", past))
    assert status == 403
    assert body["__type"] == "InvalidSignatureException"
    assert body["message"].startswith("Signature expired:")


def test_tampered_body_is_rejected(strict_server):
    key, secret, _ = strict_server.admin_credentials()
    # GetAccountConfiguration has a bucket of its own (ACM allows it 1 request/s), so the
    # earlier ListCertificates calls of this module cannot throttle it.
    prepared = signed_request(strict_server, key, secret, "CertificateManager.GetAccountConfiguration", b"{}")
    status, body, _ = send(prepared, body=b'{"x": 1}')
    assert (status, body["__type"]) == (403, "InvalidSignatureException")
    # The untampered request goes through.
    status, body, headers = send(prepared)
    assert status == 200, body
    assert headers["x-amzn-RequestId"]


def presigned_url(server, key, secret, auth_class, headers):
    """A presigned URL for a POST to the API, made by one of botocore's own query signers."""
    request = botocore.awsrequest.AWSRequest(method="POST", url=server.endpoint + "/", data=b"", headers=headers)
    auth_class(botocore.credentials.Credentials(key, secret), "acm", "us-east-1", expires=300).add_auth(request)
    return request.prepare().url


def send_to(url, headers, body=b""):
    """POSTs to a presigned URL; waits out ACM's per-operation throttle (strict mode has it on,
    and this module's other tests call the same operations)."""
    for _ in range(50):
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            answer = err.code, json.loads(err.read() or b"{}")
        if answer[1].get("__type") != "ThrottlingException":
            return answer
        time.sleep(0.1)
    return answer


def test_presigned_url_cannot_be_replayed_as_another_operation(strict_server):
    key, secret, _ = strict_server.admin_credentials()
    acm = strict_server.client("acm", key=key, secret=secret)
    arn = acm.request_certificate(DomainName="presign.example.com")["CertificateArn"]
    json_type = {"Content-Type": "application/x-amz-json-1.1"}

    # botocore's S3 presigner: SignedHeaders=host over UNSIGNED-PAYLOAD. Sent as another
    # operation, the unsigned X-Amz-Target is refused.
    url = presigned_url(strict_server, key, secret, botocore.auth.S3SigV4QueryAuth, {})
    assert "X-Amz-SignedHeaders=host&" in url
    delete = {"X-Amz-Target": "CertificateManager.DeleteCertificate", **json_type}
    status, body = send_to(url, delete, json.dumps({"CertificateArn": arn}).encode())
    assert (status, body) == (
        403,
        {
            "__type": "InvalidSignatureException",
            "message": "There were headers present in the request which were not signed: x-amz-target.",
        },
    )
    # Signed over its operation's headers but UNSIGNED-PAYLOAD, the body (any input) does not
    # match: AWS's JSON services sign the body.
    list_certificates = {"X-Amz-Target": "CertificateManager.ListCertificates", **json_type}
    url = presigned_url(strict_server, key, secret, botocore.auth.S3SigV4QueryAuth, list_certificates)
    status, body = send_to(url, list_certificates)
    assert (status, body["__type"]) == (403, "InvalidSignatureException")
    assert body["message"].startswith("The request signature we calculated does not match")
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["CertificateArn"] == arn

    # botocore's presigner for other services signs the headers it was given and the body's
    # hash: the URL works for its own operation and for nothing else.
    url = presigned_url(strict_server, key, secret, botocore.auth.SigV4QueryAuth, list_certificates)
    assert "X-Amz-SignedHeaders=content-type%3Bhost%3Bx-amz-target" in url
    status, body = send_to(url, list_certificates)
    assert status == 200, body
    assert arn in [c["CertificateArn"] for c in body["CertificateSummaryList"]]
    status, body = send_to(url, delete)
    assert (status, body["__type"]) == (403, "InvalidSignatureException")
    status, body = send_to(url, list_certificates, json.dumps({"MaxItems": 1}).encode())
    assert (status, body["__type"]) == (403, "InvalidSignatureException")
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["CertificateArn"] == arn


def test_missing_signature(strict_server):
    req = urllib.request.Request(
        strict_server.endpoint + "/",
        data=b"{}",
        headers={"X-Amz-Target": "CertificateManager.ListCertificates", "Content-Type": "application/x-amz-json-1.1"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 403
    assert json.loads(e.value.read()) == {"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"}


def test_invalid_input_gets_the_exact_validation_message(dev_server):
    # botocore validates lengths itself; turn that off so the server's answer is seen.
    acm = dev_server.client("acm", parameter_validation=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        acm.describe_certificate(CertificateArn="x")
    code, status, message = error_of(e)
    assert (code, status) == ("ValidationException", 400)
    pattern = r"arn:[\w+=/,.@-]+:acm:[\w+=/,.@-]*:[0-9]+:[\w+=,.@-]+(/[\w+=,.@-]+)*"
    assert message == (
        "2 validation errors detected: "
        "Value 'x' at 'certificateArn' failed to satisfy constraint: Member must have length greater than or equal to 20; "
        f"Value 'x' at 'certificateArn' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
    )


def test_unknown_operation(dev_server):
    status, body, _ = send(signed_request(dev_server, "123456789012", "s", "CertificateManager.NoSuchThing", b"{}"))
    assert (status, body["__type"]) == (400, "UnknownOperationException")


def test_unbuilt_operation_names_itself(dev_server):
    lightsail = dev_server.client("lightsail")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lightsail.get_instances()
    code, status, message = error_of(e)
    assert code == "NotImplementedException"
    assert "GetInstances" in message


def test_not_json_is_serialization_exception(dev_server):
    status, body, _ = send(signed_request(dev_server, "123456789012", "s", "CertificateManager.ListCertificates", b"{nope"))
    assert (status, body["__type"]) == (400, "SerializationException")


def ds_json_client(server):
    """A boto3 DS client whose model says awsJson1.1, like older SDKs."""
    return server.ds_client("json")


def test_directory_service_speaks_cbor_and_json(dev_server):
    cbor = dev_server.ds_client("smithy-rpc-v2-cbor")
    assert cbor.meta.service_model.protocol == "smithy-rpc-v2-cbor"
    json_client = ds_json_client(dev_server)
    assert json_client.meta.service_model.protocol == "json"
    for client in (cbor, json_client):
        assert client.describe_directories()["DirectoryDescriptions"] == []
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client.describe_directories(DirectoryIds=["d-0000000000"])
        code, status, _ = error_of(e)
        assert (code, status) == ("EntityDoesNotExistException", 400)
        assert e.value.response["Error"]["Code"] == "EntityDoesNotExistException"


def test_health_and_metrics(dev_server):
    with urllib.request.urlopen(dev_server.endpoint + "/health") as resp:
        assert resp.status == 200
    with urllib.request.urlopen(dev_server.endpoint + "/metrics") as resp:
        text = resp.read().decode()
    assert "carapace_api_requests_total" in text
    assert "carapace_api_request_duration_seconds_bucket" in text
