"""``ci-callback doctor``: does the deployed function, its URL, CI's callback settings, the role
and the sweep fit together? One line per check, ✓ or ✗ with the fix; all must hold.

Read-only. Works from a laptop with the deploy role's keys (TENCENTCLOUD_SECRETID/…) and
against the local stack (CI_CALLBACK_CI_ENDPOINT / CI_CALLBACK_COS_ENDPOINT) in tests.
"""

from __future__ import annotations

import json
import shlex
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

from ci_callback.errors import InvalidSweepSpec, StorageError
from ci_callback.reconcile.run import inbox_buckets, sweep_home
from ci_callback.reconcile.spec import SweepSpec, parse_spec
from ci_callback.settings import Settings

from .connect import (
    FORMATS,
    WORKFLOW_EVENTS,
    Target,
    ask_ci,
    base_of,
    notify_of,
    read_current,
    shown,
    storage_for,
    target_of,
    token_of,
)

# The console's test request: a moderation-style body without an event (parse.py's test rule).
CONSOLE_TEST_BODY = b'{"code": 0, "message": "test", "data": {}}'
SWEEP_MINUTES = 30  # serverless.yml's timer: cronExpression "0 */30 * * * * *"
TIMEOUT_SECONDS = 10.0
# The list APIs' pages, which name the CAM action each needs.
_LIST_DOC = {"ci_list_media_jobs": "doc 436/54011", "ci_list_media_pic_jobs": "doc 436/67198",
             "ci_list_workflowexecution": "doc 436/80048"}


@dataclass
class Check:
    ok: bool
    line: str
    fix: str = ""

    def render(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.line}" + ("" if self.ok or not self.fix else f" — fix: {self.fix}")


def _post(url: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - http(s) only
            return response.status, response.read(4096).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(4096).decode("utf-8", "replace")


def check_url(url: str) -> list[Check]:
    """Without a token 401; with one, the console's test body 200 ``test``."""
    bare = base_of(url)
    try:
        status, _ = _post(bare, CONSOLE_TEST_BODY)
        checks = [Check(status == 401, f"{bare} without a token answers {status} (401 expected)",
                        "the function must refuse a request without a token: set CI_CALLBACK_TOKENS and deploy")]
        status, text = _post(url, CONSOLE_TEST_BODY)
    except (urllib.error.URLError, OSError) as exc:
        return [Check(False, f"{shown(url)} does not answer: {getattr(exc, 'reason', exc)}",
                      "check the Function URL (scf info) and that the function is deployed")]
    try:
        answered = json.loads(text).get("status")
    except (ValueError, AttributeError):
        answered = None
    checks.append(Check(status == 200 and answered == "test",
                        f"{shown(url)} with the console test body answers {status} {answered or text[:40]!r}",
                        "the token must be in the deployed CI_CALLBACK_TOKENS (make deploy after editing .env)"))
    return checks


def connect_line(target: Target, url: str) -> str:
    flag = {"queue": "--queue", "pic_queue": "--pic-queue", "workflow": "--workflow"}[target.kind]
    return (f"ci-callback connect --url {shlex.quote(base_of(url))} {flag} {target.ident} --bucket {target.bucket} "
            f"--region {target.region} --apply")


def check_wiring(storage: Any, settings: Settings, target: Target, url: str) -> Check:
    """The target calls back to URL with an accepted token, an event handled, a format parsed."""
    fix = connect_line(target, url)
    try:
        current = read_current(storage, target)
    except StorageError as exc:
        return Check(False, f"{target.label}: its callback settings are not readable: {shown(str(exc))[:120]}",
                     "the keys need ci:DescribeMediaQueues / ci:DescribeMediaWorkflow")
    if not current:
        return Check(False, f"{target.label}: CI lists no such {target.kind.replace('_', ' ')}",
                     "correct the sweep spec")
    config = notify_of(target, current)
    points = config.get("Url") or ""
    token = token_of(points) or ""
    events = {e.strip() for e in config.get("Event", "").split(",")}
    wrong = []
    if config.get("State") != "On":
        wrong.append("callbacks are Off")
    elif config.get("Type", "Url") != "Url":
        wrong.append(f"it delivers to {config.get('Type')}, not a URL")
    elif base_of(points) != base_of(url):
        wrong.append(f"it points at {shown(points)}")
    elif token not in settings.tokens:
        wrong.append(f"its token {token[:4]}… is not in CI_CALLBACK_TOKENS" if token else "its URL has no token")
    if not wrong and not events & set(WORKFLOW_EVENTS):
        wrong.append(f"its Event {config.get('Event') or '-'} is none the function handles")
    if not wrong and config.get("ResultFormat", "XML") not in FORMATS:
        wrong.append(f"its ResultFormat {config.get('ResultFormat')} is not JSON or XML")
    if wrong:
        return Check(False, f"{target.label}: {'; '.join(wrong)}", fix)
    return Check(True, f"{target.label} calls back to {shown(points)} ({config.get('Event')}, "
                       f"{config.get('ResultFormat', 'XML')})")


def check_listing(storage: Any, target: Target, tag: str | None) -> Check:
    """One ``Size=1`` list: what the sweep's role needs (doc 436/54011, 436/67198, 436/80048)."""
    query: dict[str, Any] = {"Bucket": target.bucket, "Size": 1}
    if target.kind == "workflow":
        method, query["WorkflowId"] = "ci_list_workflowexecution", target.ident
    else:
        method = "ci_list_media_pic_jobs" if target.kind == "pic_queue" else "ci_list_media_jobs"
        query.update(QueueId=target.ident, Tag=tag)
    try:
        ask_ci(storage, target, method, **query)
    except StorageError as exc:
        return Check(False, f"{target.label}: the role cannot list its jobs: {shown(str(exc))[:120]}",
                     f"grant the role the list action of {_LIST_DOC[method]} (or check the bucket's region)")
    return Check(True, f"{target.label}: the role lists its jobs")


def check_sweep(storage: Any, settings: Settings, spec: SweepSpec, now: datetime, sweep_minutes: int) -> Check:
    """The newest sweep summary is younger than two timer intervals."""
    from .records import Bucket  # noqa: PLC0415

    home = sweep_home(settings, spec)
    bucket = Bucket.from_settings(storage, home, settings)
    try:
        listed = [i for i in bucket.list(bucket.sweeps_prefix) if i.key.endswith(".json") and i.modified]
    except StorageError as exc:
        return Check(False, f"sweep summaries in {home} are not readable: {shown(str(exc))[:120]}",
                     "the keys need cos:GetBucket on the index bucket")
    limit = timedelta(minutes=2 * sweep_minutes)
    newest = max((i.modified for i in listed if i.modified), default=None)
    if newest is None:
        return Check(False, f"no sweep summary under {home}/{bucket.sweeps_prefix}",
                     "the timer trigger must run (serverless.yml) with this spec; or `ci-callback reconcile` once")
    age = now - newest
    return Check(age < limit, f"the newest sweep summary is {int(age.total_seconds() // 60)} min old "
                              f"(limit {int(limit.total_seconds() // 60)} min)",
                 "check the timer trigger is enabled and its runs' logs")


def check_unfinished(storage: Any, settings: Settings, spec: SweepSpec, now: datetime) -> list[Check]:
    """Callbacks of the last hour left unfinished (the report's data), each with its inspect line."""
    from .records import Bucket  # noqa: PLC0415
    from .report import build  # noqa: PLC0415

    checks = []
    for name in inbox_buckets(settings, spec):
        try:
            summary = build(Bucket.from_settings(storage, name, settings), now - timedelta(hours=1), now)
        except StorageError as exc:
            checks.append(Check(False, f"the inbox of {name} is not readable: {shown(str(exc))[:120]}",
                                "the keys need cos:GetBucket and cos:GetObject"))
            continue
        rows = summary.unfinished()
        checks.append(Check(not rows, f"{name}: {len(rows)} callback(s) unfinished in the last hour"
                                      if rows else f"{name}: no callback unfinished in the last hour"))
        checks.extend(Check(False, f"  {row.kind} {row.id}: {row.verdict}",
                            f"ci-callback inspect {shlex.quote(row.id)} --bucket {name}") for row in rows)
    return checks


def doctor(settings: Settings, url: str, spec_text: str | None, chosen: Sequence[Target] = (),
           storage: Any = None, now: datetime | None = None, sweep_minutes: int = SWEEP_MINUTES) -> list[Check]:
    now = now or datetime.now(timezone.utc)
    checks = check_url(url)
    spec: SweepSpec | None = None
    if spec_text is None:
        checks.append(Check(False, "no sweep spec", "set CI_CALLBACK_RECONCILE_SPEC in .env or pass --spec"))
    else:
        try:
            spec = parse_spec(spec_text)
            checks.append(Check(True, f"the sweep spec is valid ({len(spec.sources)} source(s))"))
        except InvalidSweepSpec as exc:
            checks.append(Check(False, f"the sweep spec is not valid: {exc}", "correct CI_CALLBACK_RECONCILE_SPEC"))
    storage = storage or storage_for(settings)
    targets = list(chosen) or ([target_of(s) for s in spec.sources] if spec else [])
    tags = {target_of(s): (s.tags[0] if hasattr(s, "tags") else None) for s in spec.sources} if spec else {}
    for target in targets:
        checks.append(check_wiring(storage, settings, target, url))
        checks.append(check_listing(storage, target, tags.get(target) or ("PicProcess" if target.kind == "pic_queue"
                                                                           else "Transcode")))
    if spec is not None:
        checks.append(check_sweep(storage, settings, spec, now, sweep_minutes))
        checks.extend(check_unfinished(storage, settings, spec, now))
    return checks


def render(checks: Sequence[Check], out: TextIO) -> None:
    for check in checks:
        out.write(check.render() + "\n")
    failed = sum(1 for c in checks if not c.ok)
    out.write(f"doctor: {'all ' + str(len(checks)) + ' checks hold' if not failed else f'{failed} of {len(checks)} failed'}\n")


def exit_code(checks: Sequence[Check]) -> int:
    return 0 if all(c.ok for c in checks) else 1
