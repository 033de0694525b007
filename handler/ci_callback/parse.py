"""Normalise a decoded CI document into one of the typed callback models.

XML (via xmltodict) and JSON arrive in slightly different shapes: one element versus
a list, ``None`` versus ``""``, numbers as strings. Everything here reads both the
same way and never trusts a field's type.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import unquote

from .decode import decode_body
from .errors import InvalidCallback
from .models import (
    Callback,
    GenericResult,
    ImageInfo,
    JobCallback,
    JobDetails,
    MediaResult,
    ModerationCallback,
    ObjectRef,
    PicProcessResult,
    SmartCoverResult,
    WorkflowCallback,
    WorkflowRef,
    WorkflowTask,
)
from .times import parse_time

TASK_FINISH = "TaskFinish"
WORKFLOW_FINISH = "WorkflowFinish"

_COS_URL = re.compile(
    r"^https?://(?P<bucket>[^./]+)\.(?:cos|ci|pic)\.(?P<region>[^./]+)\.(?:myqcloud\.com|tencentcos\.cn)/(?P<key>[^?#]*)"
)


# ---------------------------------------------------------------- field readers


def _key(value: Any) -> Optional[str]:
    """An object key, exactly as sent (leading and trailing spaces are part of a COS key)."""
    if isinstance(value, str):
        return value if value.strip() else None
    return _text(value)


def _text(value: Any) -> Optional[str]:
    """A scalar as trimmed text; empty elements and empty strings become None."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):  # XML element with attributes: {"@a": .., "#text": ..}
        return _text(value.get("#text"))
    if isinstance(value, list) and len(value) == 1:
        return _text(value[0])
    return None


def _int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value == value and abs(value) < 1e18 else None
    text = _text(value)
    if text is None or len(text) > 40:
        return None
    try:
        return int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            return None
        return int(number) if number == number and abs(number) < 1e18 else None


def _number(value: Any) -> Optional[Union[int, float]]:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value if value == value and abs(value) != float("inf") else None
    text = _text(value)
    if text is None or len(text) > 40:
        return None
    try:
        return int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            return None
        return number if number == number and abs(number) != float("inf") else None


def _bool(value: Any) -> Optional[bool]:
    if isinstance(value, bool):
        return value
    text = _text(value)
    if text is None:
        return None
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    return None


def _list(value: Any) -> List[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _one(value: Any, what: str) -> Mapping[str, Any]:
    """A section that must be exactly one object (a one-element list is accepted)."""
    if isinstance(value, list):
        items = [v for v in value if v is not None]
        if len(items) != 1:
            raise InvalidCallback(f"{what} must hold exactly one entry, found {len(items)}")
        value = items[0]
    if not isinstance(value, dict):
        raise InvalidCallback(f"{what} is missing or not an object")
    return value


def _etag(value: Any) -> Optional[str]:
    text = _text(value)
    return text.strip().strip('"') or None if text else None


def _cos_headers(value: Any) -> Dict[str, str]:
    """Key/Value lists (jobs, workflows) and plain maps (moderation) become one dict."""
    headers: Dict[str, str] = {}
    if isinstance(value, dict) and "Key" not in value:
        for key, item in value.items():
            text = _text(item)
            if isinstance(key, str) and text is not None:
                headers[key] = text
        return headers
    for item in _list(value):
        if isinstance(item, dict):
            key = _text(item.get("Key"))
            if key is not None:
                headers[key] = _text(item.get("Value")) or ""
    return headers


# ---------------------------------------------------------------- outputs


class _Outputs:
    """Collects output objects once each, in the order CI lists them."""

    def __init__(self) -> None:
        self.refs: List[ObjectRef] = []
        self.md5: Dict[str, str] = {}
        self._seen: set[tuple[str | None, str | None, str]] = set()

    def add(self, bucket: Optional[str], region: Optional[str], key: Optional[str]) -> None:
        if not key or "${" in key:  # ${Number}-style templates are not objects
            return
        ident = (bucket, region, key)
        if ident not in self._seen:
            self._seen.add(ident)
            self.refs.append(ObjectRef(bucket, region, key))

    def walk(self, node: Any, bucket: Optional[str], region: Optional[str], depth: int = 0) -> None:
        if depth > 12:
            return
        if isinstance(node, list):
            for item in node:
                self.walk(item, bucket, region, depth + 1)
            return
        if not isinstance(node, dict):
            return
        bucket = _text(node.get("Bucket")) or bucket
        region = _text(node.get("Region")) or region
        if "ObjectName" in node:
            prefix = _key(node.get("ObjectPrefix")) or ""
            md5 = _text(node.get("Md5"))
            for name in _list(node.get("ObjectName")):
                name = _key(name)
                if not name:
                    continue
                # Snapshot/Segment list names relative to ObjectPrefix; others list full keys.
                key = name if not prefix or name.startswith(prefix) else prefix + name
                self.add(bucket, region, key)
                if md5:
                    self.md5[key] = md5
        if "TgtUri" in node:  # DocProcess pages
            self.add(bucket, region, _key(node.get("TgtUri")))
        for name, child in node.items():
            if isinstance(child, (dict, list)) and name not in ("ObjectName", "ImageInfo"):
                self.walk(child, bucket, region, depth + 1)


def _collect_outputs(
    operation: Mapping[str, Any], bucket: Optional[str], region: Optional[str], produced: bool
) -> _Outputs:
    outputs = _Outputs()
    for name, section in operation.items():
        if isinstance(name, str) and name.endswith("Result"):
            outputs.walk(section, bucket, region)
    if not outputs.refs and produced:
        # No result section: the requested Output names the object(s), when not templated.
        spec = _dict(operation.get("Output"))
        for field_name in ("Object", "AuObject", "SpriteObject"):
            outputs.add(bucket, region, _key(spec.get(field_name)))
        for stream in _list(spec.get("StreamExtract")):
            outputs.add(bucket, region, _key(_dict(stream).get("Output")))
    return outputs


# ---------------------------------------------------------------- jobs


def _image_info(info: Mapping[str, Any], etag: Any = None) -> ImageInfo:
    return ImageInfo(
        format=_text(info.get("Format")),
        width=_int(info.get("Width")),
        height=_int(info.get("Height")),
        quality=_int(info.get("Quality")),
        size=_int(info.get("Size")),
        etag=_etag(etag if etag is not None else info.get("Etag")),
        orientation=_int(info.get("Orientation")),
        ave=_text(info.get("Ave")),
    )


def _details(tag: Optional[str], operation: Mapping[str, Any], outputs: _Outputs) -> JobDetails:
    files = tuple(outputs.refs)
    if tag == "SmartCover":
        spec = _dict(operation.get("SmartCover"))
        return SmartCoverResult(
            covers=files,
            count=_int(spec.get("Count")),
            format=_text(spec.get("Format")),
            width=_int(spec.get("Width")),
            height=_int(spec.get("Height")),
            delete_duplicates=_bool(spec.get("DeleteDuplicates")),
        )
    if tag == "PicProcess":
        result = _dict(operation.get("PicProcessResult"))
        original = _dict(result.get("OriginalInfo"))
        return PicProcessResult(
            output=files[0] if files else None,
            original=_image_info(_dict(original.get("ImageInfo")), original.get("Etag")),
            processed=_image_info(_dict(result.get("ProcessResult"))),
        )
    if "MediaResult" in operation:
        return MediaResult(files=files, md5=dict(outputs.md5))
    return GenericResult(files=files, sections=tuple(k for k in operation if isinstance(k, str)))


def _workflow_ref(value: Any) -> Optional[WorkflowRef]:
    spec = _dict(value)
    ref = WorkflowRef(
        name=_text(spec.get("Name")),
        run_id=_text(spec.get("RunId")),
        workflow_id=_text(spec.get("WorkflowId")),
        workflow_name=_text(spec.get("WorkflowName")),
    )
    return ref if any(ref.to_dict().values()) else None


def _job(root: Mapping[str, Any], event: Optional[str]) -> JobCallback:
    detail = _one(root.get("JobsDetail"), "JobsDetail")
    job_id = _text(detail.get("JobId"))
    if not job_id:
        raise InvalidCallback("job callback has no JobId")
    tag = _text(detail.get("Tag"))
    state = _text(detail.get("State"))
    source = _dict(detail.get("Input"))
    operation = _dict(detail.get("Operation"))
    spec = _dict(operation.get("Output"))
    input_ref = ObjectRef(
        bucket=_text(source.get("BucketId")) or _text(source.get("Bucket")),
        region=_text(source.get("Region")),
        key=_key(source.get("Object")),
    )
    bucket = _text(spec.get("Bucket")) or input_ref.bucket
    region = _text(spec.get("Region")) or input_ref.region
    outputs = _collect_outputs(operation, bucket, region, produced=state in (None, "Success"))
    # One doc sample puts CosHeaders under Operation.Input; accept both places.
    headers = _cos_headers(source.get("CosHeaders")) or _cos_headers(_dict(operation.get("Input")).get("CosHeaders"))
    return JobCallback(
        event=event or TASK_FINISH,
        job_id=job_id,
        tag=tag,
        state=state,
        code=_text(detail.get("Code")),
        message=_text(detail.get("Message")),
        input=input_ref,
        outputs=tuple(outputs.refs),
        details=_details(tag, operation, outputs),
        workflow=_workflow_ref(detail.get("Workflow")),
        cos_headers=headers,
        queue_id=_text(detail.get("QueueId")),
        created_at=parse_time(detail.get("CreationTime")),
        started_at=parse_time(detail.get("StartTime")),
        ended_at=parse_time(detail.get("EndTime")),
        user_data=_text(operation.get("UserData")),
        legacy=event is None,
        raw=detail,
    )


# ---------------------------------------------------------------- workflows


def _task(item: Mapping[str, Any]) -> WorkflowTask:
    result = _dict(item.get("ResultInfo"))
    names = []
    for info in _list(result.get("ObjectInfo")) + _list(result.get("SpriteObjectInfo")):
        name = _key(_dict(info).get("ObjectName"))
        if name:
            names.append(name)
    return WorkflowTask(
        type=_text(item.get("Type")),
        state=_text(item.get("State")),
        job_id=_text(item.get("JobId")),
        name=_text(item.get("Name")),
        template_id=_text(item.get("TemplateId")),
        template_name=_text(item.get("TemplateName")),
        created_at=parse_time(item.get("CreateTime") or item.get("CreationTime")),
        ended_at=parse_time(item.get("EndTime")),
        code=_text(item.get("Code")),
        message=_text(item.get("Message")),
        outputs=tuple(names),
    )


def _workflow(root: Mapping[str, Any], event: Optional[str]) -> WorkflowCallback:
    execution = _one(root.get("WorkflowExecution"), "WorkflowExecution")
    run_id = _text(execution.get("RunId"))
    if not run_id:
        raise InvalidCallback("workflow callback has no RunId")
    return WorkflowCallback(
        event=event or WORKFLOW_FINISH,
        run_id=run_id,
        workflow_id=_text(execution.get("WorkflowId")),
        workflow_name=_text(execution.get("WorkflowName")),
        state=_text(execution.get("State")),
        input=ObjectRef(
            bucket=_text(execution.get("BucketId")) or _text(execution.get("Bucket")),
            region=_text(execution.get("Region")),
            key=_key(execution.get("Object")),
        ),
        tasks=tuple(_task(t) for t in _list(execution.get("Tasks")) if isinstance(t, dict)),
        cos_headers=_cos_headers(execution.get("CosHeaders")),
        created_at=parse_time(execution.get("CreateTime") or execution.get("CreationTime")),
        legacy=event is None,
        raw=execution,
    )


# ---------------------------------------------------------------- moderation


def _from_url(url: Optional[str]) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    match = _COS_URL.match(url or "")
    if match is None:
        return None, None, None
    return match["bucket"], match["region"], unquote(match["key"]) or None


def _categories(section: Mapping[str, Any], snake: bool) -> Dict[str, Dict[str, Any]]:
    """Per-category verdicts (PornInfo / porn_info …) as {name: {hit_flag, score, label}}."""
    found: Dict[str, Dict[str, Any]] = {}
    suffix = "_info" if snake else "Info"
    keys = ("hit_flag", "score", "label", "sub_label") if snake else ("HitFlag", "Score", "Label", "SubLabel")
    for name, value in section.items():
        if isinstance(name, str) and name.endswith(suffix) and isinstance(value, dict):
            category = name[: -len(suffix)].rstrip("_") or name
            found[category] = {
                "hit_flag": _int(value.get(keys[0])),
                "score": _number(value.get(keys[1])),
                "label": _text(value.get(keys[2])),
                "sub_label": _text(value.get(keys[3])),
            }
    return found


def _top_score(categories: Mapping[str, Mapping[str, Any]]) -> Optional[Union[int, float]]:
    scores = [c["score"] for c in categories.values() if c.get("score") is not None]
    return max(scores) if scores else None


def _hit_label(categories: Mapping[str, Mapping[str, Any]], result: Optional[int]) -> Optional[str]:
    if result == 0:
        return "Normal"
    for name, verdict in categories.items():
        if verdict.get("hit_flag"):
            return verdict.get("label") or name
    return None


def _moderation_detail(root: Mapping[str, Any], event: str) -> ModerationCallback:
    detail = _one(root.get("JobsDetail"), "JobsDetail")
    categories = _categories(detail, snake=False)
    categories.update({k: v for k, v in _categories(_dict(detail.get("Labels")), snake=False).items() if k not in categories})
    url = _text(detail.get("Url"))
    bucket, region, key = _from_url(url)
    result = _int(detail.get("Result"))
    if result is None:
        result = _int(detail.get("Suggestion"))
    score = _number(detail.get("Score"))
    return ModerationCallback(
        event=event,
        form="detail",
        job_id=_text(detail.get("JobId")),
        state=_text(detail.get("State")),
        result=result,
        label=_text(detail.get("Label")) or _hit_label(categories, result),
        score=score if score is not None else _top_score(categories),
        input=ObjectRef(
            bucket=_text(detail.get("BucketId")) or bucket,
            region=_text(detail.get("Region")) or region,
            key=_key(detail.get("Object")) or key,
        ),
        url=url,
        code=_int(detail.get("Code")),
        message=_text(detail.get("Message")),
        categories=categories,
        cos_headers=_cos_headers(detail.get("CosHeaders")),
        created_at=parse_time(detail.get("CreationTime")),
        raw=detail,
    )


def _moderation_simple(root: Mapping[str, Any]) -> ModerationCallback:
    data = _dict(root.get("data"))
    code = _int(root.get("code"))
    message = _text(root.get("message"))
    event = _text(data.get("event"))
    trace_id = _text(data.get("trace_id"))
    # The console sends a test request when the URL is saved: data without event.
    # A body with a trace_id is a real verdict, whatever its message says ("latest", "contest").
    is_test = event is None or (trace_id is None and "test" in (message or "").lower())
    categories = _categories(data, snake=True)
    url = _text(data.get("url"))
    bucket, region, key = _from_url(url)
    result = _int(data.get("result"))
    return ModerationCallback(
        event=None if is_test else event,
        form="simple",
        job_id=trace_id,
        state="Success" if code == 0 else "Failed",
        result=result,
        label=_text(data.get("label")) or _hit_label(categories, result),
        score=_number(data.get("score")) if data.get("score") is not None else _top_score(categories),
        input=ObjectRef(bucket, region, key),
        url=url,
        code=code,
        message=message,
        is_test=is_test,
        categories=categories,
        cos_headers=_cos_headers(data.get("cos_headers")),
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
        event = _text(root.get("EventName"))
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


def parse_callback(body: Union[bytes, str], content_type: Optional[str] = None) -> Callback:
    """Decode and normalise one callback body. Raises InvalidCallback on anything else."""
    document, fmt = decode_body(body, content_type)
    return from_document(document, fmt)


