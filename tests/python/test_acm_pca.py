"""AWS Private CA (acm-pca): the pinned model is routed, but no operation is built yet.

Every operation of the model answers `NotImplementedException` (501) naming it, through both
protocols the model lists — Smithy RPC v2 CBOR (current SDKs) and awsJson1.1 with target
prefix `ACMPrivateCA` (older SDKs) — signed with the `acm-pca` signing name; an operation in
no model is `UnknownOperationException`. Driven with boto3 built from models/acm-pca.
"""

import json
import os

import botocore
import botocore.exceptions
import pytest

from conftest import MODELS, Server


@pytest.fixture(scope="module")
def server():
    server = Server(dev=True)
    yield server
    server.stop()


def operations():
    with open(os.path.join(MODELS, "acm-pca", "service-2.json")) as f:
        return sorted(json.load(f)["operations"])


@pytest.mark.parametrize("protocol", ["smithy-rpc-v2-cbor", "json"])
@pytest.mark.parametrize("operation", operations())
def test_every_operation_answers_not_implemented_naming_it(server, protocol, operation):
    pca = server.pinned_client("acm-pca", protocol=protocol, parameter_validation=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        getattr(pca, botocore.xform_name(operation))()
    err = e.value.response
    assert err["Error"]["Code"] == "NotImplementedException", err
    assert operation in err["Error"]["Message"] and "acm-pca" in err["Error"]["Message"], err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 501
