"""LocalCOS: a real HTTP moto S3 server driven by the real COS SDK (cos-python-sdk-v5).

These tests pin down what the product can rely on locally: object/tagging calls and
their request counts, exact key round-trips, the write-once recipes, the moto gaps
that ``cos_compat`` papers over, and the fault-injection hooks.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("moto")
pytest.importorskip("qcloud_cos")

from qcloud_cos import CosS3Client  # noqa: E402
from qcloud_cos.cos_exception import CosClientError, CosServiceError  # noqa: E402

from ci_callback_dev.localcos import Fault, LocalCOS  # noqa: E402

BUCKET = "examplebucket-1250000000"
HOST = f"{BUCKET}.cos.ap-guangzhou.myqcloud.com"
TAGS = {"TagSet": {"Tag": [{"Key": "state", "Value": "done ok"}, {"Key": "job", "Value": "j-1"}]}}


@pytest.fixture
def cos() -> Iterator[LocalCOS]:
    with LocalCOS() as server:
        server.create_bucket(BUCKET)
        server.reset_requests()
        yield server


@pytest.fixture
def raw_cos() -> Iterator[LocalCOS]:
    """Plain moto, no COS header translation: documents moto's own behaviour."""
    with LocalCOS(cos_compat=False) as server:
        server.create_bucket(BUCKET)
        server.reset_requests()
        yield server


def read(client: CosS3Client, key: str) -> bytes:
    return client.get_object(Bucket=BUCKET, Key=key, KeySimplifyCheck=False)["Body"].get_raw_stream().read()


def calls(cos: LocalCOS) -> list[tuple[str, str, str, int | None]]:
    return [(r.method, r.path, r.query, r.status) for r in cos.requests]


def test_import_is_cheap_and_needs_no_moto() -> None:
    code = (
        "import sys; sys.path[:0] = ['handler', 'dev']; import ci_callback_dev.localcos; "
        "heavy = [m for m in ('moto', 'werkzeug', 'flask', 'qcloud_cos', 'requests') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).resolve().parents[1]))


def test_endpoint_and_lifecycle() -> None:
    server = LocalCOS()
    with pytest.raises(RuntimeError):
        server.port  # noqa: B018 - the property raises before start
    with server:
        assert server.host == "127.0.0.1"
        assert server.endpoint == f"http://127.0.0.1:{server.port}"
    server.stop()  # idempotent


def test_object_calls_one_request_each(cos: LocalCOS) -> None:
    c = cos.client()
    key = "index/job-1.json"

    # GIVEN one object WHEN each SDK call runs THEN it makes exactly one HTTP request
    put = c.put_object(Bucket=BUCKET, Key=key, Body=b'{"a":1}', ContentType="application/json")
    assert put["ETag"].strip('"')
    assert calls(cos) == [("PUT", "/index/job-1.json", "", 200)]

    cos.reset_requests()
    assert read(c, key) == b'{"a":1}'
    assert calls(cos) == [("GET", "/index/job-1.json", "", 200)]

    cos.reset_requests()
    head = c.head_object(Bucket=BUCKET, Key=key)
    # head_object returns a plain dict with the server's header spelling: look up
    # case-insensitively in product code (moto says "content-type", COS "Content-Type").
    assert {k.lower(): v for k, v in head.items()}["content-type"] == "application/json"
    assert head["Content-Length"] == "7"
    assert cos.request_count == 1

    cos.reset_requests()
    assert c.object_exists(Bucket=BUCKET, Key=key) is True
    assert c.object_exists(Bucket=BUCKET, Key="index/missing.json") is False
    assert calls(cos) == [("HEAD", "/index/job-1.json", "", 200), ("HEAD", "/index/missing.json", "", 404)]

    c.put_object(Bucket=BUCKET, Key="other/x.json", Body=b"x")
    cos.reset_requests()
    listing = c.list_objects(Bucket=BUCKET, Prefix="index/")
    assert [o["Key"] for o in listing["Contents"]] == [key]
    assert listing["Contents"][0]["Size"] == "7"  # the SDK's xml2dict leaves numbers as str
    assert cos.request_count == 1 and cos.requests[0].query.startswith("prefix=index%2F")

    cos.reset_requests()
    c.delete_object(Bucket=BUCKET, Key=key)
    c.delete_object(Bucket=BUCKET, Key=key)  # deleting a missing key is a 204 too
    assert [r.status for r in cos.requests] == [204, 204]
    assert c.object_exists(Bucket=BUCKET, Key=key) is False


def test_request_log_sees_cos_host_and_headers(cos: LocalCOS) -> None:
    cos.client().put_object(Bucket=BUCKET, Key="a b.json", Body=b"x", ContentType="application/json")
    (rec,) = cos.requests
    assert rec.n == 1
    assert rec.host == HOST  # bucket travels in Host (virtual-host style), not the path
    assert rec.path == "/a b.json" and rec.raw_path == "/a%20b.json"
    assert rec.headers["content-type"] == "application/json"
    assert rec.headers["authorization"].startswith("q-sign-algorithm=sha1&q-ak=local&")


def test_tagging_one_request_each(cos: LocalCOS) -> None:
    c = cos.client()
    c.put_object(Bucket=BUCKET, Key="out/1.jpg", Body=b"img")
    cos.reset_requests()

    assert c.put_object_tagging(Bucket=BUCKET, Key="out/1.jpg", Tagging=TAGS) is None
    assert calls(cos) == [("PUT", "/out/1.jpg", "tagging=", 200)]

    cos.reset_requests()
    assert c.get_object_tagging(Bucket=BUCKET, Key="out/1.jpg") == TAGS
    assert calls(cos) == [("GET", "/out/1.jpg", "tagging=", 200)]

    # put_object_tagging replaces the whole set (S3/COS semantics), it does not merge
    c.put_object_tagging(Bucket=BUCKET, Key="out/1.jpg", Tagging={"TagSet": {"Tag": [{"Key": "k", "Value": "v"}]}})
    assert c.get_object_tagging(Bucket=BUCKET, Key="out/1.jpg") == {"TagSet": {"Tag": [{"Key": "k", "Value": "v"}]}}

    with pytest.raises(CosServiceError) as err:
        c.put_object_tagging(Bucket=BUCKET, Key="out/missing.jpg", Tagging=TAGS)
    assert (err.value.get_status_code(), err.value.get_error_code()) == (404, "NoSuchKey")


@pytest.mark.parametrize(
    "key",
    [
        "with space.json",
        "中文/文件 名.json",
        "a+b.json",
        "100%.json",
        "%2F.json",
        "a/../b.json",
        "../up.json",
        "a/./b",
        "q?x=1#frag",
        "amp&eq=;'\"~!@$()*,",
        "a//b",
        "dir/",
    ],
)
def test_keys_round_trip_exactly(cos: LocalCOS, key: str) -> None:
    c = cos.client()
    c.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    assert read(c, key) == key.encode()
    assert cos.requests[0].path == "/" + key  # the server stored exactly this key
    listed = [o["Key"] for o in c.list_objects(Bucket=BUCKET).get("Contents", [])]
    assert listed == [key]
    c.put_object_tagging(Bucket=BUCKET, Key=key, Tagging=TAGS)
    assert c.get_object_tagging(Bucket=BUCKET, Key=key) == TAGS


def test_get_object_refuses_dot_dot_keys_by_default(cos: LocalCOS) -> None:
    c = cos.client()
    c.put_object(Bucket=BUCKET, Key="../up.json", Body=b"x")
    # The SDK's client-side KeySimplifyCheck rejects keys that collapse to "/" or "".
    with pytest.raises(CosClientError):
        c.get_object(Bucket=BUCKET, Key="../")
    assert cos.request_count == 1


# -- write-once ---------------------------------------------------------------


def test_if_none_match_star_is_write_once_412(cos: LocalCOS) -> None:
    c = cos.client()
    c.put_object(Bucket=BUCKET, Key="locks/job-1", Body=b"first", IfNoneMatch="*")
    with pytest.raises(CosServiceError) as err:
        c.put_object(Bucket=BUCKET, Key="locks/job-1", Body=b"second", IfNoneMatch="*")
    assert err.value.get_status_code() == 412
    assert err.value.get_error_code() == "PreconditionFailed"
    assert read(c, "locks/job-1") == b"first"
    assert [r.status for r in cos.requests] == [200, 412, 200]
    assert cos.requests[1].headers["if-none-match"] == "*"


def test_forbid_overwrite_is_write_once_409(cos: LocalCOS) -> None:
    c = cos.client()
    # There is no ForbidOverwrite kwarg; Metadata entries are sent verbatim as headers.
    with pytest.raises(CosClientError, match="No Parameter Named ForbidOverwrite"):
        c.put_object(Bucket=BUCKET, Key="locks/job-2", Body=b"x", ForbidOverwrite="true")
    forbid = {"x-cos-forbid-overwrite": "true"}
    c.put_object(Bucket=BUCKET, Key="locks/job-2", Body=b"first", Metadata=forbid)
    with pytest.raises(CosServiceError) as err:
        c.put_object(Bucket=BUCKET, Key="locks/job-2", Body=b"second", Metadata=forbid)
    assert (err.value.get_status_code(), err.value.get_error_code()) == (409, "FileAlreadyExists")
    assert read(c, "locks/job-2") == b"first"
    assert cos.requests[1].headers["x-cos-forbid-overwrite"] == "true"


def test_both_write_once_headers_give_409(cos: LocalCOS) -> None:
    # What a product sending both recipes sees locally: forbid-overwrite wins (409).
    c = cos.client()
    both = {"IfNoneMatch": "*", "Metadata": {"x-cos-forbid-overwrite": "true"}}
    c.put_object(Bucket=BUCKET, Key="locks/both", Body=b"first", **both)
    with pytest.raises(CosServiceError) as err:
        c.put_object(Bucket=BUCKET, Key="locks/both", Body=b"second", **both)
    assert (err.value.get_status_code(), err.value.get_error_code()) == (409, "FileAlreadyExists")


def test_write_once_is_atomic_under_concurrency(cos: LocalCOS) -> None:
    c = cos.client()
    outcomes: list[object] = []

    def attempt(i: int) -> None:
        try:
            c.put_object(Bucket=BUCKET, Key="locks/race", Body=str(i), Metadata={"x-cos-forbid-overwrite": "true"})
            outcomes.append("won")
        except CosServiceError as e:
            outcomes.append(e.get_status_code())

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, outcomes)) == ["409"] * 7 + ["won"]


def test_raw_moto_ignores_forbid_overwrite(raw_cos: LocalCOS) -> None:
    c = raw_cos.client()
    forbid = {"x-cos-forbid-overwrite": "true"}
    c.put_object(Bucket=BUCKET, Key="k", Body=b"first", Metadata=forbid)
    c.put_object(Bucket=BUCKET, Key="k", Body=b"second", Metadata=forbid)  # no error
    assert read(c, "k") == b"second"


def test_raw_moto_412_has_no_cos_error_code(raw_cos: LocalCOS) -> None:
    c = raw_cos.client()
    c.put_object(Bucket=BUCKET, Key="k", Body=b"1", IfNoneMatch="*")
    with pytest.raises(CosServiceError) as err:
        c.put_object(Bucket=BUCKET, Key="k", Body=b"2", IfNoneMatch="*")
    # moto's <Error> lacks <Resource>, so the SDK's digest fails: branch on status codes.
    assert (err.value.get_status_code(), err.value.get_error_code()) == (412, "Unknown")


# -- COS-only headers -----------------------------------------------------------


def test_copy_object(cos: LocalCOS) -> None:
    c = cos.client()
    c.put_object(Bucket=BUCKET, Key="src/a b.json", Body=b"SRC", Metadata={"x-cos-meta-origin": "ci"})
    cos.reset_requests()
    out = c.copy_object(
        Bucket=BUCKET, Key="dst/中.json", CopySource={"Bucket": BUCKET, "Key": "src/a b.json", "Region": "ap-guangzhou"}
    )
    assert out["ETag"].strip('"')
    assert cos.request_count == 1
    assert cos.requests[0].headers["x-cos-copy-source"] == f"{HOST}/src/a%20b.json"
    assert read(c, "dst/中.json") == b"SRC"
    assert c.head_object(Bucket=BUCKET, Key="dst/中.json")["x-cos-meta-origin"] == "ci"


def test_raw_moto_copy_object_creates_empty_object(raw_cos: LocalCOS) -> None:
    c = raw_cos.client()
    c.put_object(Bucket=BUCKET, Key="src.json", Body=b"SRC")
    # moto ignores x-cos-copy-source: a plain empty PUT, answered with an empty body that
    # the SDK then fails to parse (an XML ParseError, not a CosServiceError).
    source = {"Bucket": BUCKET, "Key": "src.json", "Region": "ap-guangzhou"}
    with pytest.raises(ET.ParseError):
        c.copy_object(Bucket=BUCKET, Key="dst.json", CopySource=source)
    assert read(c, "dst.json") == b""


def test_metadata_and_tagging_header(cos: LocalCOS) -> None:
    c = cos.client()
    c.put_object(Bucket=BUCKET, Key="m", Body=b"1", Metadata={"x-cos-meta-job-id": "j-1"}, Tagging="a=1&b=two")
    assert c.head_object(Bucket=BUCKET, Key="m")["x-cos-meta-job-id"] == "j-1"
    tags = c.get_object_tagging(Bucket=BUCKET, Key="m")
    assert tags == {"TagSet": {"Tag": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "two"}]}}


def test_raw_moto_drops_cos_metadata_and_tagging_header(raw_cos: LocalCOS) -> None:
    c = raw_cos.client()
    c.put_object(Bucket=BUCKET, Key="m", Body=b"1", Metadata={"x-cos-meta-job-id": "j-1"}, Tagging="a=1&b=two")
    assert not [k for k in c.head_object(Bucket=BUCKET, Key="m") if "meta" in k.lower()]
    assert c.get_object_tagging(Bucket=BUCKET, Key="m") == {"TagSet": None}


def test_error_codes_are_cos_shaped(cos: LocalCOS) -> None:
    c = cos.client()
    with pytest.raises(CosServiceError) as err:
        c.get_object(Bucket=BUCKET, Key="missing")
    assert (err.value.get_status_code(), err.value.get_error_code()) == (404, "NoSuchKey")
    assert err.value.get_resource_location() == f"{HOST}/missing"
    with pytest.raises(CosServiceError) as err:
        c.put_object(Bucket="nobucket-1250000000", Key="k", Body=b"")
    assert (err.value.get_status_code(), err.value.get_error_code()) == (404, "NoSuchBucket")
    with pytest.raises(CosServiceError) as err:
        c.head_object(Bucket=BUCKET, Key="missing")
    # HEAD has no body: the SDK invents NoSuchResource for every HEAD 404.
    assert (err.value.get_status_code(), err.value.get_error_code()) == (404, "NoSuchResource")


# -- isolation ----------------------------------------------------------------


def test_instances_are_isolated_and_names_freed_on_stop() -> None:
    with LocalCOS() as first:
        first.create_bucket(BUCKET)
        first.client().put_object(Bucket=BUCKET, Key="k", Body=b"1")
        with LocalCOS() as second:
            with pytest.raises(CosServiceError) as err:
                second.create_bucket(BUCKET)  # bucket names are global, as in COS
            assert (err.value.get_status_code(), err.value.get_error_code()) == (409, "BucketAlreadyExists")
    with LocalCOS() as third:
        third.create_bucket(BUCKET)  # freed by first.stop()
        assert third.client().list_objects(Bucket=BUCKET).get("Contents") is None


# -- fault injection ----------------------------------------------------------


@pytest.mark.parametrize("status,code", [(500, "InternalError"), (503, "ServiceUnavailable"), (429, "SlowDown")])
def test_inject_status(cos: LocalCOS, status: int, code: str) -> None:
    c = cos.client()
    c.put_object(Bucket=BUCKET, Key="k", Body=b"1")
    cos.inject_at(2, Fault(status=status))
    with pytest.raises(CosServiceError) as err:
        read(c, "k")
    assert (err.value.get_status_code(), err.value.get_error_code()) == (status, code)
    assert read(c, "k") == b"1"  # one-shot
    assert [r.status for r in cos.requests] == [200, status, 200]
    assert cos.requests[1].fault == Fault(status=status)


def test_inject_reset_drops_connection(cos: LocalCOS) -> None:
    c = cos.client()
    cos.inject(Fault(reset=True), when=lambda r: r.method == "PUT")
    with pytest.raises(CosClientError, match="Connection aborted"):
        c.put_object(Bucket=BUCKET, Key="k", Body=b"body is drained first")
    assert cos.requests[0].status is None
    assert c.object_exists(Bucket=BUCKET, Key="k") is False  # the PUT never reached moto


def test_inject_delay_makes_client_time_out(cos: LocalCOS) -> None:
    slow = cos.client(Timeout=0.2)
    cos.inject(Fault(delay=0.6))
    started = time.monotonic()
    with pytest.raises(CosClientError, match="timed out"):
        slow.object_exists(Bucket=BUCKET, Key="k")
    assert time.monotonic() - started < 0.6


def test_inject_with_predicate_and_times(cos: LocalCOS) -> None:
    c = cos.client()
    cos.inject(Fault(status=503), when=lambda r: r.query == "tagging=", times=None)
    c.put_object(Bucket=BUCKET, Key="k", Body=b"1")
    for _ in range(2):
        with pytest.raises(CosServiceError):
            c.put_object_tagging(Bucket=BUCKET, Key="k", Tagging=TAGS)
    cos.clear_faults()
    c.put_object_tagging(Bucket=BUCKET, Key="k", Tagging=TAGS)
    assert [r.status for r in cos.requests] == [200, 503, 503, 200]


def test_sdk_retries_5xx_with_retry_header(cos: LocalCOS) -> None:
    # retry=1: the SDK resends after a 5xx (sleeping 1 s) with x-cos-sdk-retry: true
    retrying = CosS3Client(cos.client()._conf, retry=1)
    cos.inject(Fault(status=503))
    retrying.put_object(Bucket=BUCKET, Key="k", Body=b"1")
    assert [r.status for r in cos.requests] == [503, 200]
    assert "x-cos-sdk-retry" not in cos.requests[0].headers
    assert cos.requests[1].headers["x-cos-sdk-retry"] == "true"
