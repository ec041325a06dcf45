"""AWS Private CA (acm-pca) on the wire: both protocols the model lists — Smithy RPC v2 CBOR
(current SDKs) and awsJson1.1 with target prefix `ACMPrivateCA` (older SDKs) — signed with
the `acm-pca` signing name. Built operations answer through both; the operations not built
yet (multi-Region replicas, CA associations) answer
`NotImplementedException` (501) naming them, once their input passes the model's validation
(input that does not is a `ValidationException`). Driven with boto3 built from
models/acm-pca; test_pca.py drives the built operations end to end.
"""

import json
import os

import botocore
import botocore.exceptions
import pytest

from conftest import MODELS, Server

CA_ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11223344-1122-1122-1122-112233445566"

# Values for the required string members whose shapes carry a pattern; other strings take
# their enum's first value or "x".
SAMPLES = {
    "CertificateAuthorityArn": CA_ARN,
    "ResourceArn": CA_ARN,
    "CertificateArn": CA_ARN + "/certificate/0123456789abcdef0123456789abcdef",
    "AssociatedResourceArn": "arn:aws:acm:us-east-1:123456789012:certificate/11223344-1122-1122-1122-112233445566",
    "AuditReportId": "11223344-1122-1122-1122-112233445566",
    "ReplicaRegion": "us-west-2",
    "IdempotencyToken": "token",
    "Principal": "acm.amazonaws.com",
    "S3BucketName": "audit-bucket",
    "Policy": "{}",
    "CertificateSerial": "01",
    "Key": "team",
}


@pytest.fixture(scope="module")
def server():
    server = Server(dev=True)
    yield server
    server.stop()


def model():
    with open(os.path.join(MODELS, "acm-pca", "service-2.json")) as f:
        return json.load(f)


# The operations Carapace does not build yet.
NOT_BUILT = [
    "BatchCreateCertificateAuthorityReplica",
    "CreateCertificateAuthorityAssociation",
    "CreateCertificateAuthorityReplica",
    "DeleteCertificateAuthorityAssociation",
    "ListCertificateAuthorityAssociations",
    "ListCertificateAuthorityReplicas",
]


def operations():
    return sorted(model()["operations"])


def minimal(shapes, shape_name, member=None):
    """The smallest value of a shape that the model's constraints accept: only required
    members, one element per required list."""
    shape = shapes[shape_name]
    kind = shape["type"]
    if kind == "structure":
        return {m: minimal(shapes, shape["members"][m]["shape"], m) for m in shape.get("required", [])}
    if kind == "list":
        return [minimal(shapes, shape["member"]["shape"], member)]
    if kind == "string":
        return shape["enum"][0] if "enum" in shape else SAMPLES.get(member, "x")
    if kind == "blob":
        return b"x"
    if kind in ("integer", "long"):
        return max(shape.get("min", 1), 1)
    raise AssertionError(f"no sample for {shape_name} ({kind})")


def valid_input(operation):
    m = model()
    shape = m["operations"][operation].get("input")
    return minimal(m["shapes"], shape["shape"]) if shape else {}


def test_not_built_operations_are_in_the_model():
    assert set(NOT_BUILT) <= set(operations())


@pytest.mark.parametrize("protocol", ["smithy-rpc-v2-cbor", "json"])
def test_built_operations_answer_through_both_protocols(server, protocol):
    pca = server.pinned_client("acm-pca", protocol=protocol)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        pca.describe_certificate_authority(CertificateAuthorityArn=CA_ARN)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException", e.value.response
    assert pca.list_certificate_authorities()["CertificateAuthorities"] == []


@pytest.mark.parametrize("protocol", ["smithy-rpc-v2-cbor", "json"])
@pytest.mark.parametrize("operation", NOT_BUILT)
def test_operations_not_built_answer_not_implemented_naming_them(server, protocol, operation):
    pca = server.pinned_client("acm-pca", protocol=protocol)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        getattr(pca, botocore.xform_name(operation))(**valid_input(operation))
    err = e.value.response
    assert err["Error"]["Code"] == "NotImplementedException", err
    assert operation in err["Error"]["Message"] and "acm-pca" in err["Error"]["Message"], err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 501


@pytest.mark.parametrize("protocol", ["smithy-rpc-v2-cbor", "json"])
def test_input_is_validated_before_the_operation_answers(server, protocol):
    pca = server.pinned_client("acm-pca", protocol=protocol, parameter_validation=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        pca.describe_certificate_authority(CertificateAuthorityArn="not-an-arn")
    err = e.value.response
    assert err["Error"]["Code"] == "ValidationException", err
    assert "certificateAuthorityArn" in err["Error"]["Message"], err
