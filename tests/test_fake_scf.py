"""FakeSCF: the SCF Invoke API fake, driven by the real tencentcloud SDK client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("werkzeug")
pytest.importorskip("tencentcloud.scf.v20180416")

import requests  # noqa: E402
from tencentcloud.common import credential  # noqa: E402
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException  # noqa: E402
from tencentcloud.common.profile.client_profile import ClientProfile  # noqa: E402
from tencentcloud.common.profile.http_profile import HttpProfile  # noqa: E402
from tencentcloud.scf.v20180416 import models, scf_client  # noqa: E402

from fake_scf import SECRET_ID, SECRET_KEY, FakeSCF, tc3_signature  # noqa: E402

CONTEXT = {"event": "ci-callback", "jobId": "j-1", "keys": ["a b.jpg", "中文.jpg"]}


@pytest.fixture
def scf() -> Iterator[FakeSCF]:
    with FakeSCF() as fake:
        yield fake


def invoke_request(**overrides: object) -> models.InvokeRequest:
    req = models.InvokeRequest()
    req.FunctionName = "next-function"
    req.InvocationType = "Event"
    req.Namespace = "default"
    req.Qualifier = "$LATEST"
    req.ClientContext = json.dumps(CONTEXT, ensure_ascii=False)
    for k, v in overrides.items():
        setattr(req, k, v)
    return req


def test_signed_invoke_is_recorded(scf: FakeSCF) -> None:
    client = scf.client(region="ap-shanghai", token="session-token-1")

    resp = client.Invoke(invoke_request())

    assert resp.RequestId and resp.Result.FunctionRequestId
    assert resp.Result.RetMsg == ""  # async (Event) invocations return no RetMsg
    (inv,) = scf.invocations
    assert inv.function_name == "next-function"
    assert inv.invocation_type == "Event"
    assert inv.client_context == CONTEXT
    assert inv.namespace == "default" and inv.qualifier == "$LATEST"
    assert inv.token == "session-token-1"
    assert inv.region == "ap-shanghai"
    assert inv.host == scf.endpoint  # the SDK signs Host = HttpProfile.endpoint
    assert inv.request_id == resp.RequestId
    assert scf.rejections == []


def test_sync_invoke_returns_ret_msg() -> None:
    with FakeSCF(ret_msg=lambda inv: json.dumps({"echo": inv.function_name})) as fake:
        req = models.InvokeRequest()
        req.FunctionName = "fn"  # everything else left to SCF defaults
        resp = fake.client().Invoke(req)
        assert json.loads(resp.Result.RetMsg) == {"echo": "fn"}
        (inv,) = fake.invocations
        assert (inv.invocation_type, inv.namespace, inv.qualifier, inv.client_context, inv.token) == (
            None,
            None,
            None,
            None,
            None,
        )


def test_wrong_secret_key_is_rejected(scf: FakeSCF) -> None:
    with pytest.raises(TencentCloudSDKException) as err:
        scf.client(secret_key="not-the-key").Invoke(invoke_request())
    assert err.value.get_code() == "AuthFailure.SignatureFailure"
    assert err.value.get_request_id()
    assert scf.invocations == []
    assert scf.rejections[0][0] == "AuthFailure.SignatureFailure"


def test_unknown_secret_id_is_rejected(scf: FakeSCF) -> None:
    with pytest.raises(TencentCloudSDKException) as err:
        scf.client(secret_id="AKIDsomeoneelse").Invoke(invoke_request())
    assert err.value.get_code() == "AuthFailure.SecretIdNotFound"
    assert scf.invocations == []


def test_required_token_is_checked() -> None:
    with FakeSCF(token="tok") as fake:
        with pytest.raises(TencentCloudSDKException) as err:
            fake.client(token="other").Invoke(invoke_request())
        assert err.value.get_code() == "AuthFailure.TokenFailure"
        fake.client(token="tok").Invoke(invoke_request())
        assert [i.token for i in fake.invocations] == ["tok"]


def test_get_method_is_verified_too(scf: FakeSCF) -> None:
    # reqMethod="GET" puts the params in the signed query string instead of a JSON body.
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=scf.endpoint, protocol="http", reqMethod="GET"))
    client = scf_client.ScfClient(credential.Credential(SECRET_ID, SECRET_KEY), "ap-guangzhou", profile)
    client.Invoke(invoke_request())
    assert scf.invocations[0].client_context == CONTEXT


def test_fail_next_answers_an_api_error(scf: FakeSCF) -> None:
    scf.fail_next("ResourceNotFound.Function", "function not found")
    with pytest.raises(TencentCloudSDKException) as err:
        scf.client().Invoke(invoke_request())
    assert (err.value.get_code(), err.value.get_message()) == ("ResourceNotFound.Function", "function not found")
    scf.client().Invoke(invoke_request())  # one-shot
    assert len(scf.invocations) == 1


def test_parameter_errors(scf: FakeSCF) -> None:
    client = scf.client()
    for overrides, code in [
        ({"FunctionName": None}, "MissingParameter"),
        ({"InvocationType": "Async"}, "InvalidParameterValue.InvocationType"),
        ({"ClientContext": "{not json"}, "InvalidParameterValue.ClientContext"),
    ]:
        with pytest.raises(TencentCloudSDKException) as err:
            client.Invoke(invoke_request(**overrides))
        assert err.value.get_code() == code
    assert scf.invocations == []


def _signed_post(scf: FakeSCF, body: bytes, *, timestamp: int, action: str = "Invoke") -> dict:
    headers = {"content-type": "application/json", "host": scf.endpoint}
    signature = tc3_signature(
        SECRET_KEY,
        method="POST",
        path="/",
        query="",
        headers=headers,
        signed_headers=["content-type", "host"],
        body=body,
        timestamp=timestamp,
    )
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    headers.update(
        {
            "Authorization": f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{date}/scf/tc3_request, "
            f"SignedHeaders=content-type;host, Signature={signature}",
            "X-TC-Action": action,
            "X-TC-Version": "2018-04-16",
            "X-TC-Timestamp": str(timestamp),
        }
    )
    return headers


def test_hand_signed_request_and_tampering(scf: FakeSCF) -> None:
    body = json.dumps({"FunctionName": "fn", "InvocationType": "Event"}).encode()
    now = int(time.time())

    ok = requests.post(scf.url, data=body, headers=_signed_post(scf, body, timestamp=now), timeout=5).json()
    assert "Result" in ok["Response"]

    tampered = requests.post(
        scf.url, data=body.replace(b"fn", b"xx"), headers=_signed_post(scf, body, timestamp=now), timeout=5
    ).json()
    assert tampered["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
    assert tampered["Response"]["RequestId"]

    stale = requests.post(scf.url, data=body, headers=_signed_post(scf, body, timestamp=now - 600), timeout=5)
    assert stale.status_code == 200  # API 3.0 errors ride on HTTP 200
    assert stale.headers["Content-Type"] == "application/json"
    assert stale.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureExpire"

    other = requests.post(
        scf.url, data=body, headers=_signed_post(scf, body, timestamp=now, action="ListFunctions"), timeout=5
    ).json()
    assert other["Response"]["Error"]["Code"] == "InvalidAction"

    unsigned = requests.post(scf.url, data=body, headers={"Content-Type": "application/json"}, timeout=5).json()
    assert unsigned["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"

    assert [i.function_name for i in scf.invocations] == ["fn"]
