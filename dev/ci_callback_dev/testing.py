"""Test your own handlers as SCF runs them: a pytest plugin.

Load it with ``-p ci_callback_dev.testing`` (pytest ``addopts``) or ``pytest_plugins =
["ci_callback_dev.testing"]`` in your root conftest.py. Then ask for the ``ci_app`` fixture:
each test gets a fresh default router, your ``index.py`` imported into it (with the modules
beside it), a real local COS (``LocalCOS``) and settings from the ``ci_settings`` dict, and
sends events through your ``index.main_handler``, as the trigger would.

Override ``ci_index`` (the path of your index.py, default ``<rootdir>/handler/index.py``)
and ``ci_settings`` (``CI_CALLBACK_*`` variables, as in serverless.yml) in your conftest.py.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

TOKEN = "local-test-token"
BUCKET = "examplebucket-1250000000"
REGION = "ap-guangzhou"
PACKAGE = "ci_callback"  # the runtime: loaded once, never forgotten between tests


@dataclass(frozen=True)
class Answer:
    """What ``main_handler`` returned: the status, the decoded JSON body and the whole response."""

    status: int
    payload: dict[str, Any]
    response: dict[str, Any]


class App:
    """Your ``index.py`` on the local COS: deliver callbacks, then read what they wrote."""

    def __init__(self, module: ModuleType, cos: Any, settings: Any, bucket: str = BUCKET) -> None:
        self.module = module  # your index module
        self.cos = cos  # the LocalCOS: create_bucket(), seed(), client(), requests
        self.settings = settings  # the Settings main_handler reads from the environment
        self.bucket = bucket  # created for you; the sample events name it

    @property
    def router(self) -> Any:
        """The default router your index.py registered on (fresh for each test)."""
        from ci_callback.app import router  # noqa: PLC0415

        return router

    def invoke(self, event: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> Answer:
        """Any trigger event (Function URL, API Gateway, timer, CMQ) through ``main_handler``."""
        context = dict(context or {"request_id": "local-test", "time_limit_in_ms": 20_000})
        response = self.module.main_handler(dict(event), context)
        return Answer(int(response["statusCode"]), json.loads(response["body"]), response)

    def deliver(self, body: bytes | str, *, content_type: str | None = None, token: str | None = TOKEN) -> Answer:
        """POST one callback body through the Function URL trigger, as CI does."""
        from ci_callback_dev import events  # noqa: PLC0415

        raw = body if isinstance(body, bytes) else body.encode("utf-8")
        kind = content_type or ("application/json" if raw.lstrip()[:1] in (b"{", b"[") else "application/xml")
        return self.invoke(events.function_url_event(raw, token=token, headers={"content-type": kind},
                                                     remote_addr="127.0.0.1"))

    def deliver_event(self, path: Path | str, *, token: str | None = TOKEN) -> Answer:
        """A saved trigger event (as in the project's events/), with the test token in its query."""
        from ci_callback_dev import events  # noqa: PLC0415

        event = json.loads(Path(path).read_text(encoding="utf-8"))
        return self.invoke(events.with_token(event, token) if token else event)

    def seed(self, keys: Iterable[str], bucket: str | None = None, body: bytes = b"x") -> None:
        self.cos.seed(bucket or self.bucket, keys, body)

    def keys(self, prefix: str = "", bucket: str | None = None) -> list[str]:
        client, found, marker = self.cos.client(), [], ""
        while True:
            page = client.list_objects(Bucket=bucket or self.bucket, Prefix=prefix, Marker=marker, MaxKeys=1000)
            contents = page.get("Contents") or []
            found += [item["Key"] for item in contents]
            if str(page.get("IsTruncated", "false")).lower() != "true" or not contents:
                return sorted(found)
            marker = page.get("NextMarker") or contents[-1]["Key"]

    def read_json(self, key: str, bucket: str | None = None) -> Any:
        got = self.cos.client().get_object(Bucket=bucket or self.bucket, Key=key)
        return json.loads(got["Body"].get_raw_stream().read())


def _forget_user_modules(folder: Path) -> None:
    """Drop the modules loaded from FOLDER (your index.py and what it imports), not the runtime."""
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file or name == PACKAGE or name.startswith(PACKAGE + "."):
            continue
        if Path(file).resolve().is_relative_to(folder):
            del sys.modules[name]


def load_index(index: Path) -> ModuleType:
    """A fresh default router, then INDEX imported (its decorators register on that router)."""
    from ci_callback import app  # noqa: PLC0415

    folder = index.resolve().parent
    _forget_user_modules(folder)
    app.reset_router()
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module(index.stem)


@pytest.fixture
def ci_index(request: pytest.FixtureRequest) -> Path:
    """The index.py under test; override this fixture to point at yours."""
    return Path(request.config.rootpath) / "handler" / "index.py"


@pytest.fixture
def ci_settings() -> dict[str, str]:
    """Settings as environment variables (``CI_CALLBACK_ACTIONS`` …); override to change them."""
    return {}


@pytest.fixture
def ci_app(ci_index: Path, ci_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    from ci_callback.app import reset_router  # noqa: PLC0415
    from ci_callback.settings import Settings, reset_settings  # noqa: PLC0415
    from ci_callback_dev.localcos import LocalCOS  # noqa: PLC0415

    if not ci_index.is_file():
        pytest.fail(f"ci_index: {ci_index} is not a file (override the ci_index fixture)", pytrace=False)
    with LocalCOS() as cos:
        cos.create_bucket(BUCKET)
        environ = {"CI_CALLBACK_TOKENS": TOKEN, "CI_CALLBACK_COS_ENDPOINT": cos.endpoint,
                   "TENCENTCLOUD_REGION": REGION, "TENCENTCLOUD_SECRETID": "AKIDlocaltest",
                   "TENCENTCLOUD_SECRETKEY": "localtestkey", "TENCENTCLOUD_SESSIONTOKEN": "localtesttoken",
                   **ci_settings}
        # Only this dict configures the function: nothing leaks in from the developer's shell.
        for name in [n for n in list(os.environ) if n.startswith("CI_CALLBACK_")]:
            monkeypatch.delenv(name)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        reset_settings()
        settings = Settings.from_env(environ)  # a bad setting fails here, with its variable's name
        try:
            yield App(load_index(ci_index), cos, settings)
        finally:
            _forget_user_modules(ci_index.resolve().parent)
            reset_router()
            reset_settings()
