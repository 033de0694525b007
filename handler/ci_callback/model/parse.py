"""Normalise a decoded CI document into one of the typed callback models.

Fields are read with ``readers`` (XML and JSON shapes alike, no field's type trusted);
a job's Tag-specific result comes from the Tag registry (``results``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from ..errors import InvalidCallback
from ..times import parse_time
from . import readers as r
from .decode import decode_body
from .models import Callback, JobCallback, ModerationCallback, ObjectRef, WorkflowCallback, WorkflowRef, WorkflowTask
from .results import details_for

TASK_FINISH = "TaskFinish"
WORKFLOW_FINISH = "WorkflowFinish"

_COS_URL = re.compile(
    r"^https?://(?P<bucket>[^./]+)\.(?:cos|ci|pic)\.(?P<region>[^./]+)\.(?:myqcloud\.com|tencentcos\.cn)/(?P<key>[^?#]*)"
)


# ---------------------------------------------------------------- outputs


class _Outputs:
    """Collects output objects once each, in the order CI lists them."""

    def __init__(self) -> None:
        self.refs: list[ObjectRef] = []
        self.md5: dict[str, str] = {}
        self._seen: set[tuple[str | None, str | None, str]] = set()

    def add(self, bucket: str | None, region: str | None, key: str | None) -> None:
        if not key or "${" in key:  # ${Number}-style templates are not objects
            return
        ident = (bucket, region, key)
        if ident not in self._seen:
            self._seen.add(ident)
            self.refs.append(ObjectRef(bucket, region, key))

    def walk(self, node: Any, bucket: str | None, region: str | None, depth: int = 0) -> None:
        if depth > 12:
            return
        if isinstance(node, list):
            for item in node:
                self.walk(item, bucket, region, depth + 1)
            return
        if not isinstance(node, dict):
            return
        bucket = r.text(node.get("Bucket")) or bucket
        region = r.text(node.get("Region")) or region
        if "ObjectName" in node:
            prefix = r.key(node.get("ObjectPrefix")) or ""
            md5 = r.text(node.get("Md5"))
            for name in r.items(node.get("ObjectName")):
                name = r.key(name)
                if not name:
                    continue
                # Snapshot/Segment list names relative to ObjectPrefix; others list full keys.
                key = name if not prefix or name.startswith(prefix) else prefix + name
                self.add(bucket, region, key)
                if md5:
                    self.md5[key] = md5
        if "TgtUri" in node:  # DocProcess pages
            self.add(bucket, region, r.key(node.get("TgtUri")))
        for name, child in node.items():
            if isinstance(child, (dict, list)) and name not in ("ObjectName", "ImageInfo"):
                self.walk(child, bucket, region, depth + 1)


def _collect_outputs(
    operation: Mapping[str, Any], bucket: str | None, region: str | None, produced: bool
) -> _Outputs:
    outputs = _Outputs()
    for name, section in operation.items():
        if isinstance(name, str) and name.endswith("Result"):
            outputs.walk(section, bucket, region)
    if not outputs.refs and produced:
        # No result section: the requested Output names the object(s), when not templated.
        spec = r.mapping(operation.get("Output"))
        for field_name in ("Object", "AuObject", "SpriteObject"):
            outputs.add(bucket, region, r.key(spec.get(field_name)))
        for stream in r.items(spec.get("StreamExtract")):
            outputs.add(bucket, region, r.key(r.mapping(stream).get("Output")))
    return outputs


# ---------------------------------------------------------------- jobs


def _workflow_ref(value: Any) -> WorkflowRef | None:
    spec = r.mapping(value)
    ref = WorkflowRef(
        name=r.text(spec.get("Name")),
        run_id=r.text(spec.get("RunId")),
        workflow_id=r.text(spec.get("WorkflowId")),
        workflow_name=r.text(spec.get("WorkflowName")),
    )
    return ref if any(ref.to_dict().values()) else None


def _job(root: Mapping[str, Any], event: str | None) -> JobCallback:
    detail = r.one(root.get("JobsDetail"), "JobsDetail")
    job_id = r.text(detail.get("JobId"))
    if not job_id:
        raise InvalidCallback("job callback has no JobId")
    tag = r.text(detail.get("Tag"))
    state = r.text(detail.get("State"))
    source = r.mapping(detail.get("Input"))
    operation = r.mapping(detail.get("Operation"))
    spec = r.mapping(operation.get("Output"))
    input_ref = ObjectRef(
        bucket=r.text(source.get("BucketId")) or r.text(source.get("Bucket")),
        region=r.text(source.get("Region")),
        key=r.key(source.get("Object")),
    )
    bucket = r.text(spec.get("Bucket")) or input_ref.bucket
    region = r.text(spec.get("Region")) or input_ref.region
    outputs = _collect_outputs(operation, bucket, region, produced=state in (None, "Success"))
    # One doc sample puts CosHeaders under Operation.Input; accept both places.
    headers = r.cos_headers(source.get("CosHeaders")) or r.cos_headers(r.mapping(operation.get("Input")).get("CosHeaders"))
    return JobCallback(
        event=event or TASK_FINISH,
        job_id=job_id,
        tag=tag,
        state=state,
        code=r.text(detail.get("Code")),
        message=r.text(detail.get("Message")),
        input=input_ref,
        outputs=tuple(outputs.refs),
        details=details_for(tag, operation, tuple(outputs.refs), outputs.md5),
        workflow=_workflow_ref(detail.get("Workflow")),
        cos_headers=headers,
        queue_id=r.text(detail.get("QueueId")),
        created_at=parse_time(detail.get("CreationTime")),
        started_at=parse_time(detail.get("StartTime")),
        ended_at=parse_time(detail.get("EndTime")),
        user_data=r.text(operation.get("UserData")),
        legacy=event is None,
        raw=detail,
    )


# ---------------------------------------------------------------- workflows


def _task(item: Mapping[str, Any]) -> WorkflowTask:
    result = r.mapping(item.get("ResultInfo"))
    names = []
    for info in r.items(result.get("ObjectInfo")) + r.items(result.get("SpriteObjectInfo")):
        name = r.key(r.mapping(info).get("ObjectName"))
        if name:
            names.append(name)
    return WorkflowTask(
        type=r.text(item.get("Type")),
        state=r.text(item.get("State")),
        job_id=r.text(item.get("JobId")),
        name=r.text(item.get("Name")),
        template_id=r.text(item.get("TemplateId")),
        template_name=r.text(item.get("TemplateName")),
        created_at=parse_time(item.get("CreateTime") or item.get("CreationTime")),
        ended_at=parse_time(item.get("EndTime")),
        code=r.text(item.get("Code")),
        message=r.text(item.get("Message")),
        outputs=tuple(names),
    )


def _workflow(root: Mapping[str, Any], event: str | None) -> WorkflowCallback:
    execution = r.one(root.get("WorkflowExecution"), "WorkflowExecution")
    run_id = r.text(execution.get("RunId"))
    if not run_id:
        raise InvalidCallback("workflow callback has no RunId")
    # A run's detail (the sweep's source) may name the workflow only as <Name> (doc sample of
    # DescribeWorkflowExecution) and, in an older sample, give Object as the object's full URL.
    url_bucket, url_region, url_key = _from_url(r.text(execution.get("Object")))
    return WorkflowCallback(
        event=event or WORKFLOW_FINISH,
        run_id=run_id,
        workflow_id=r.text(execution.get("WorkflowId")),
        workflow_name=r.text(execution.get("WorkflowName")) or r.text(execution.get("Name")),
        state=r.text(execution.get("State")),
        input=ObjectRef(
            bucket=r.text(execution.get("BucketId")) or r.text(execution.get("Bucket")) or url_bucket,
            region=r.text(execution.get("Region")) or url_region,
            key=url_key or r.key(execution.get("Object")),
        ),
        tasks=tuple(_task(t) for t in r.items(execution.get("Tasks")) if isinstance(t, dict)),
        cos_headers=r.cos_headers(execution.get("CosHeaders")),
        created_at=parse_time(execution.get("CreateTime") or execution.get("CreationTime")),
        legacy=event is None,
        raw=execution,
    )


# ---------------------------------------------------------------- moderation


def _from_url(url: str | None) -> tuple[str | None, str | None, str | None]:
    match = _COS_URL.match(url or "")
    if match is None:
        return None, None, None
    return match["bucket"], match["region"], unquote(match["key"]) or None


def _categories(section: Mapping[str, Any], snake: bool) -> dict[str, dict[str, Any]]:
    """Per-category verdicts (PornInfo / porn_info …) as {name: {hit_flag, score, label}}."""
    found: dict[str, dict[str, Any]] = {}
    suffix = "_info" if snake else "Info"
    keys = ("hit_flag", "score", "label", "sub_label") if snake else ("HitFlag", "Score", "Label", "SubLabel")
    for name, value in section.items():
        if isinstance(name, str) and name.endswith(suffix) and isinstance(value, dict):
            category = name[: -len(suffix)].rstrip("_") or name
            found[category] = {
                "hit_flag": r.integer(value.get(keys[0])),
                "score": r.number(value.get(keys[1])),
                "label": r.text(value.get(keys[2])),
                "sub_label": r.text(value.get(keys[3])),
            }
    return found


def _top_score(categories: Mapping[str, Mapping[str, Any]]) -> int | float | None:
    scores = [c["score"] for c in categories.values() if c.get("score") is not None]
    return max(scores) if scores else None


def _hit_label(categories: Mapping[str, Mapping[str, Any]], result: int | None) -> str | None:
    if result == 0:
        return "Normal"
    for name, verdict in categories.items():
        if verdict.get("hit_flag"):
            return verdict.get("label") or name
    return None


def _moderation_detail(root: Mapping[str, Any], event: str) -> ModerationCallback:
    detail = r.one(root.get("JobsDetail"), "JobsDetail")
    categories = _categories(detail, snake=False)
    categories.update({k: v for k, v in _categories(r.mapping(detail.get("Labels")), snake=False).items() if k not in categories})
    url = r.text(detail.get("Url"))
    bucket, region, key = _from_url(url)
    result = r.integer(detail.get("Result"))
    if result is None:
        result = r.integer(detail.get("Suggestion"))
    score = r.number(detail.get("Score"))
    return ModerationCallback(
        event=event,
        form="detail",
        job_id=r.text(detail.get("JobId")),
        state=r.text(detail.get("State")),
        result=result,
        label=r.text(detail.get("Label")) or _hit_label(categories, result),
        score=score if score is not None else _top_score(categories),
        input=ObjectRef(
            bucket=r.text(detail.get("BucketId")) or bucket,
            region=r.text(detail.get("Region")) or region,
            key=r.key(detail.get("Object")) or key,
        ),
        url=url,
        code=r.integer(detail.get("Code")),
        message=r.text(detail.get("Message")),
        categories=categories,
        cos_headers=r.cos_headers(detail.get("CosHeaders")),
        created_at=parse_time(detail.get("CreationTime")),
        raw=detail,
    )


def _moderation_simple(root: Mapping[str, Any]) -> ModerationCallback:
    data = r.mapping(root.get("data"))
    code = r.integer(root.get("code"))
    message = r.text(root.get("message"))
    event = r.text(data.get("event"))
    trace_id = r.text(data.get("trace_id"))
    # The console sends a test request when the URL is saved: data without event.
    # A body with a trace_id is a real verdict, whatever its message says ("latest", "contest").
    is_test = event is None or (trace_id is None and "test" in (message or "").lower())
    categories = _categories(data, snake=True)
    url = r.text(data.get("url"))
    bucket, region, key = _from_url(url)
    result = r.integer(data.get("result"))
    return ModerationCallback(
        event=None if is_test else event,
        form="simple",
        job_id=trace_id,
        state="Success" if code == 0 else "Failed",
        result=result,
        label=r.text(data.get("label")) or _hit_label(categories, result),
        score=r.number(data.get("score")) if data.get("score") is not None else _top_score(categories),
        input=ObjectRef(bucket, region, key),
        url=url,
        code=code,
        message=message,
        is_test=is_test,
        categories=categories,
        cos_headers=r.cos_headers(data.get("cos_headers")),
        raw=dict(root),
    )


# ---------------------------------------------------------------- entry point


def _root(document: Any, fmt: str) -> Mapping[str, Any]:
    if not isinstance(document, dict):
        raise InvalidCallback("callback body must be an object")
    if fmt == "xml":
        if len(document) != 1:
            raise InvalidCallback("XML callback must have one root element")
        (tag, content), = document.items()
        if tag in ("WorkflowExecution", "JobsDetail"):
            return {tag: content}
        if tag != "Response":
            raise InvalidCallback(f"root element <{str(tag)[:40]}> is not a CI callback")
        if not isinstance(content, dict):
            raise InvalidCallback("<Response> is empty")
        return content
    inner = document.get("Response")
    if isinstance(inner, dict) and "JobsDetail" not in document and "WorkflowExecution" not in document:
        return inner  # some JSON samples wrap everything in {"Response": …}
    return document


def from_document(document: Any, fmt: str) -> Callback:
    """Build a model from an already decoded document (dicts from XML or JSON)."""
    root = _root(document, fmt)
    try:
        event = r.text(root.get("EventName"))
        if "WorkflowExecution" in root:
            return _workflow(root, event)
        if event and event.startswith("Review"):
            return _moderation_detail(root, event)
        if "JobsDetail" in root:
            return _job(root, event)
        if "data" in root and "code" in root:
            return _moderation_simple(root)
    except InvalidCallback:
        raise
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError) as exc:
        raise InvalidCallback(f"unexpected callback structure ({type(exc).__name__})") from None
    raise InvalidCallback("not a CI callback: no JobsDetail, WorkflowExecution or moderation data")


def parse_callback(body: bytes | str, content_type: str | None = None) -> Callback:
    """Decode and normalise one callback body. Raises InvalidCallback on anything else."""
    document, fmt = decode_body(body, content_type)
    return from_document(document, fmt)


