"""Shared test helpers: where the shared corpus lives, and how to skip without it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
CALLBACKS = CORPUS / "callbacks"
QUERY = CORPUS / "query"
SCF_EVENTS = CORPUS / "scf-events"
EVENTS = ROOT / "events"

# Tests import the package from handler/, exactly as SCF does (code root on the path), and the
# dev tooling from dev/.
for _path in (ROOT / "dev", ROOT / "handler"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

needs_corpus = pytest.mark.skipif(
    not CALLBACKS.is_dir(), reason="../shared/corpus is not beside the project root; corpus tests need it"
)


def corpus_file(name: str) -> bytes:
    path = CALLBACKS / name
    if not path.exists():
        pytest.skip(f"corpus sample {name} not found under {CALLBACKS}")
    return path.read_bytes()


def scf_event(name: str) -> dict:
    """A documented SCF trigger event from the corpus, or a skip that says where it was looked for."""
    import json

    path = SCF_EVENTS / name
    if not path.exists():
        pytest.skip(f"SCF event sample {name} not found under {SCF_EVENTS} (the shared corpus is absent)")
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- the product on a real local COS

TOKEN = "test-token-5f1c"
BUCKET = "examplebucket-1250000000"
REGION = "ap-guangzhou"


@pytest.fixture
def logs_at_info():
    """Log lines go to stdout at INFO for the test (the CLI or the demo may have pointed them at a
    captured stream that closes with the test), and are put back after it."""
    from ci_callback import log

    log.set_stream(None)
    log.set_level("INFO")
    yield
    log.set_stream(None)
    log.set_level("INFO")


@pytest.fixture(autouse=True)
def _fresh_latency_meter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test is a fresh container: COS latencies seen by an earlier test (its injected delays)
    must not make this one's deadline checks refuse to start work."""
    from ci_callback import budget

    monkeypatch.setattr(budget, "METER", budget.Meter())


@pytest.fixture(autouse=True)
def _role_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """SCF injects the role's temporary keys; tests use fixed fake ones."""
    monkeypatch.setenv("TENCENTCLOUD_SECRETID", "AKIDlocaltest")
    monkeypatch.setenv("TENCENTCLOUD_SECRETKEY", "localtestkey")
    monkeypatch.setenv("TENCENTCLOUD_SESSIONTOKEN", "localtesttoken")


@pytest.fixture
def cos():
    """A real HTTP S3-compatible server (moto's S3 app) with the demo bucket created."""
    from ci_callback_dev.localcos import LocalCOS

    with LocalCOS() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture
def settings(cos):
    """Settings pointing every COS call at the local server, with one accepted token."""
    from ci_callback.settings import Settings

    return Settings(tokens=(TOKEN,), cos_endpoint=cos.endpoint, region=REGION)


def url_event(body, token=TOKEN, content_type="application/xml", headers=None, method="POST"):
    """Wrap a callback body in a Function URL event, as the default trigger delivers it."""
    from ci_callback_dev import events

    all_headers = {"content-type": content_type}
    all_headers.update(headers or {})
    return events.function_url_event(body, token=token, headers=all_headers, method=method,
                                     remote_addr="127.0.0.1")


def apigw_event(body, token=TOKEN, content_type="application/xml", headers=None, method="POST"):
    """Wrap a callback body in an API Gateway event, as the trigger delivers it."""
    from ci_callback_dev import events

    if isinstance(body, bytes):
        body = body.decode("utf-8")
    all_headers = {"content-type": content_type, "x-api-requestid": "test-request"}
    all_headers.update(headers or {})
    return events.apigw_event(body, token=token, headers=all_headers, method=method)


def invoke(event, settings, context=None, **kwargs):
    """Call the handler as SCF does; return (status, payload dict)."""
    import json

    from ci_callback.app import handle

    response = handle(event, context or {"request_id": "test", "time_limit_in_ms": 10000}, settings=settings, **kwargs)
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def fake_ci():
    """The local CI query API (``fake_ci.FakeCI``), checking signatures with the role's fake keys."""
    from fake_ci import FakeCI

    with FakeCI(secret_id="AKIDlocaltest", secret_key="localtestkey") as server:
        yield server
