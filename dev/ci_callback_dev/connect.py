"""``ci-callback connect``: point the sweep spec's queues and workflows at the function.

For each media queue, image queue and workflow it reads the callback settings
(``ci_get_media_queue`` / ``ci_get_media_pic_queue``: DescribeMediaQueues, doc 436/54045;
``ci_get_workflow``: doc 460/76857), prints current → planned, and only with ``apply``
writes them (``ci_update_media_queue`` / ``ci_update_media_pic_queue``: UpdateMediaQueue,
doc 436/54046, which requires the queue's ``Name`` and ``State``: the queue's own are kept;
``ci_update_workflow``: doc 436/53994, where the callback is the Start node's
``Input.NotifyConfig`` and nothing else of the topology changes).

A queue already wired is not written. Refused, with one line and no write: a ``Url``
longer than CI accepts (an older UpdateMediaQueue page, doc 1545/65217, limits it to 100
characters; newer pages name no limit, so 100 holds), an intranet address (the
NotifyConfig table: "不能为内网地址"), a token not in ``CI_CALLBACK_TOKENS``. Tokens are
shown as their first four characters only.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ci_callback.reconcile.spec import JobSource, Source, SweepSpec
from ci_callback.settings import Settings

MAX_URL_CHARS = 100  # NotifyConfig.Url (doc 1545/65217)
QUEUE_EVENTS = ("TaskFinish",)
WORKFLOW_EVENTS = ("TaskFinish", "WorkflowFinish")
FORMATS = ("JSON", "XML")
NOTIFY_FIELDS = ("State", "Type", "Url", "Event", "ResultFormat", "MqMode", "MqRegion", "MqName")


@dataclass(frozen=True)
class Target:
    """One queue, image queue or workflow whose callback is wired."""

    kind: str  # queue | pic_queue | workflow
    bucket: str
    region: str
    ident: str

    @property
    def label(self) -> str:
        return f"{self.kind} {self.ident} ({self.bucket})"

    @property
    def events(self) -> tuple[str, ...]:
        return WORKFLOW_EVENTS if self.kind == "workflow" else QUEUE_EVENTS


@dataclass(frozen=True)
class Wiring:
    """What every target should call back to."""

    url: str  # with ?token=
    result_format: str = "JSON"
    via: str = "url"  # url | tdmq
    mq_mode: str = "Topic"
    mq_region: str = ""
    mq_name: str = ""

    def notify(self, target: Target) -> dict[str, str]:
        config = {"State": "On", "Type": "Url" if self.via == "url" else "TDMQ", "Event": ",".join(target.events),
                  "ResultFormat": self.result_format}
        if self.via == "url":
            config["Url"] = self.url
        else:
            config.update(MqMode=self.mq_mode, MqRegion=self.mq_region, MqName=self.mq_name)
        return config



def ask_ci(storage: Any, target: Target, method: str, **query: Any) -> Any:
    """A CI API call for TARGET: the COS adapter resolves its bucket's region (one rule, in the
    adapter); the spec says where the bucket is."""
    storage.learn_regions([(target.bucket, target.region)])
    return storage.query_ci(method, **query)

def targets(spec: SweepSpec) -> list[Target]:
    return [target_of(source) for source in spec.sources]


def target_of(source: Source) -> Target:
    ident = source.queue if isinstance(source, JobSource) else source.workflow
    return Target(source.kind, source.bucket, source.region, ident)


# ---------------------------------------------------------------- the URL and its token


def token_of(url: str) -> str | None:
    return dict(parse_qsl(urlsplit(url).query)).get("token")


def base_of(url: str) -> str:
    """The URL without its token: what "points at this function" compares."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path or "/", urlencode(query), ""))


def with_token(url: str, token: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query + [("token", token)]), ""))


def shown(url: str | None) -> str:
    """A URL (or any text) with its token cut to four characters."""
    if not url:
        return "-"
    token = token_of(url)
    return url.replace(token, token[:4] + "…") if token else url


def intranet(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost") or host.endswith(".local"):
        return True
    # A Function URL's private form: <app-id>-<url-id>.in.<region>.tencentscf.com (doc 583/96099).
    if host.endswith(".tencentscf.com") and ".in." in f".{host}":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local or address.is_reserved


def url_problem(url: str, tokens: Sequence[str], allow_intranet: bool = False) -> str | None:
    """Why CI cannot be pointed at URL (with its token), or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{shown(url)[:60]!r} is not an http(s) URL"
    token = token_of(url)
    if not token:
        return "the URL carries no ?token= and CI_CALLBACK_TOKENS is empty; `make token`, then set it in .env"
    if token not in tokens:
        return f"the token {token[:4]}… is not in CI_CALLBACK_TOKENS; the function would answer 401"
    if len(url) > MAX_URL_CHARS:
        return (f"the callback URL is {len(url)} characters; CI accepts at most {MAX_URL_CHARS} "
                "(a shorter token: `make token`)")
    if intranet(url) and not allow_intranet:
        return f"{parts.hostname} is an intranet address; CI cannot call back to it"
    return None


def callback_url(url: str, tokens: Sequence[str]) -> str:
    """URL as given when it carries a token, else with the last configured one: a rotation
    appends the new token (CI_CALLBACK_TOKENS=old,new), and step 2 points CI at it."""
    if token_of(url) or not tokens:
        return url
    return with_token(url, tokens[-1])


# ---------------------------------------------------------------- current settings


def _one(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    found = data.get(key)
    if isinstance(found, list):
        found = found[0] if found else None
    return found if isinstance(found, Mapping) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def read_current(storage: Any, target: Target) -> Mapping[str, Any]:
    """The queue's QueueList entry, or the workflow's MediaWorkflowList entry ({} when CI has none)."""
    if target.kind == "workflow":
        found = ask_ci(storage, target, "ci_get_workflow", Bucket=target.bucket, Ids=target.ident)
        return _one(found, "MediaWorkflowList")
    method = "ci_get_media_pic_queue" if target.kind == "pic_queue" else "ci_get_media_queue"
    return _one(ask_ci(storage, target, method, Bucket=target.bucket, QueueIds=target.ident), "QueueList")


def notify_of(target: Target, current: Mapping[str, Any]) -> dict[str, str]:
    """The NotifyConfig of a queue, or of a workflow's Start node."""
    if target.kind == "workflow":
        nodes = _one(_one(current, "Topology"), "Nodes")
        holder: Mapping[str, Any] = _one(_one(nodes, "Start"), "Input")
    else:
        holder = current
    config = holder.get("NotifyConfig")
    return {k: _text(v) for k, v in config.items() if k in NOTIFY_FIELDS} if isinstance(config, Mapping) else {}


def same(current: Mapping[str, str], planned: Mapping[str, str]) -> bool:
    def events(value: str) -> set[str]:
        return {e.strip() for e in value.split(",") if e.strip()}

    return all((events(current.get(k, "")) == events(v)) if k == "Event" else current.get(k, "") == v
               for k, v in planned.items())


def summary(config: Mapping[str, str]) -> str:
    if not config or config.get("State") != "On":
        return "Off"
    where = shown(config.get("Url")) if config.get("Type", "Url") == "Url" else \
        f"TDMQ {config.get('MqMode', '')} {config.get('MqRegion', '')}/{config.get('MqName', '')}"
    return f"On {where} {config.get('Event', '-')} {config.get('ResultFormat', 'XML')}"


# ---------------------------------------------------------------- writing


def write(storage: Any, target: Target, current: Mapping[str, Any], planned: Mapping[str, str]) -> None:
    if target.kind == "workflow":
        topology = copy.deepcopy(dict(current.get("Topology") or {}))
        start = topology.setdefault("Nodes", {}).setdefault("Start", {"Type": "Start"})
        start.setdefault("Input", {})["NotifyConfig"] = dict(planned)
        body = {"MediaWorkflow": {"Name": current.get("Name"), "State": current.get("State"), "Topology": topology}}
        ask_ci(storage, target, "ci_update_workflow", Bucket=target.bucket, WorkflowId=target.ident, Body=body)
        return
    # UpdateMediaQueue requires Name and State: the queue's own (doc 436/54046).
    request = {"Name": current.get("Name"), "State": current.get("State"), "NotifyConfig": dict(planned)}
    method = "ci_update_media_pic_queue" if target.kind == "pic_queue" else "ci_update_media_queue"
    ask_ci(storage, target, method, Bucket=target.bucket, QueueId=target.ident, Request=request)


@dataclass
class Line:
    target: Target
    current: str
    planned: str
    outcome: str  # wired | written | would write | refused: … | failed: …


def storage_for(settings: Settings) -> Any:
    """The product's COS/CI adapter (its endpoints, keys and retries), with the caller's keys."""
    from ci_callback.adapters.services import Services  # noqa: PLC0415 - loads the SDK

    return Services.from_env(settings).storage


def connect(settings: Settings, chosen: Sequence[Target], wiring: Wiring, apply: bool,
            allow_intranet: bool = False, storage: Any = None) -> list[Line]:
    if wiring.via == "url":
        problem = url_problem(wiring.url, settings.tokens, allow_intranet)
        if problem:
            return [Line(t, "-", "-", f"refused: {problem}") for t in chosen]
    from ci_callback.errors import StorageError  # noqa: PLC0415

    storage = storage or storage_for(settings)
    lines = []
    for target in chosen:
        planned = wiring.notify(target)
        try:
            current = read_current(storage, target)
            if not current:
                lines.append(Line(target, "-", summary(planned), "failed: CI lists no such "
                                  f"{target.kind.replace('_', ' ')} in {target.bucket}"))
                continue
            config = notify_of(target, current)
            if same(config, planned):
                lines.append(Line(target, summary(config), summary(planned), "wired"))
                continue
            if apply:
                write(storage, target, current, planned)
            lines.append(Line(target, summary(config), summary(planned), "written" if apply else "would write"))
        except StorageError as exc:
            lines.append(Line(target, "-", summary(planned), f"failed: {shown(str(exc))[:160]}"))
    return lines


def render(lines: Sequence[Line], out: TextIO) -> None:
    for line in lines:
        out.write(f"{line.target.label}: {line.current} → {line.planned}  [{line.outcome}]\n")


def exit_code(lines: Sequence[Line]) -> int:
    return 0 if all(line.outcome in ("wired", "written", "would write") for line in lines) else 1
