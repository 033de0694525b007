"""Typed, immutable models of the three callback kinds.

Models are plain frozen dataclasses: no validation framework at import time, so a cold
start stays cheap. ``to_dict()`` is the public, JSON-able contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple, Union

from .kinds import JOB, MODERATION, WORKFLOW  # noqa: F401 - re-exported: models.JOB …
from .times import iso

Number = Union[int, float]


@dataclass(frozen=True)
class ObjectRef:
    """One COS object: where an input came from or an output went."""

    bucket: Optional[str]
    region: Optional[str]
    key: Optional[str]

    def to_dict(self) -> Dict[str, Optional[str]]:
        return {"bucket": self.bucket, "region": self.region, "object": self.key}


@dataclass(frozen=True)
class WorkflowRef:
    """The workflow run that triggered a job, when one did."""

    name: Optional[str]
    run_id: Optional[str]
    workflow_id: Optional[str]
    workflow_name: Optional[str]

    def to_dict(self) -> Dict[str, Optional[str]]:
        return {
            "name": self.name,
            "run_id": self.run_id,
            "workflow_id": self.workflow_id,
            "workflow_name": self.workflow_name,
        }


@dataclass(frozen=True)
class ImageInfo:
    """Image facts CI reports for PicProcess originals and results."""

    format: Optional[str] = None
    width: Optional[int] = None
    height: Optional[int] = None
    quality: Optional[int] = None
    size: Optional[int] = None
    etag: Optional[str] = None
    orientation: Optional[int] = None
    ave: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return {
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "quality": self.quality,
            "size": self.size,
            "etag": self.etag,
            "orientation": self.orientation,
            "ave": self.ave,
        }


@dataclass(frozen=True)
class SmartCoverResult:
    """SmartCover: the cover images CI picked, and the settings it used."""

    tag: ClassVar[str] = "SmartCover"
    covers: Tuple[ObjectRef, ...]
    count: Optional[int] = None
    format: Optional[str] = None
    width: Optional[int] = None
    height: Optional[int] = None
    delete_duplicates: Optional[bool] = None

    def to_dict(self) -> Dict[str, Any]:
        return {
            "type": "SmartCoverResult",
            "covers": [c.to_dict() for c in self.covers],
            "count": self.count,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "delete_duplicates": self.delete_duplicates,
        }


@dataclass(frozen=True)
class PicProcessResult:
    """PicProcess: the processed image and what CI measured before and after."""

    tag: ClassVar[str] = "PicProcess"
    output: Optional[ObjectRef]
    original: ImageInfo
    processed: ImageInfo

    def to_dict(self) -> Dict[str, Any]:
        return {
            "type": "PicProcessResult",
            "output": self.output.to_dict() if self.output else None,
            "original": self.original.to_dict(),
            "processed": self.processed.to_dict(),
        }


@dataclass(frozen=True)
class MediaResult:
    """Any media Tag (Transcode, Snapshot, Segment, …): its files and their MD5s."""

    files: Tuple[ObjectRef, ...]
    md5: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "type": "MediaResult",
            "files": [f.to_dict() for f in self.files],
            "md5": dict(self.md5),
        }


@dataclass(frozen=True)
class GenericResult:
    """A Tag this version has no dedicated view for; its outputs are still listed."""

    files: Tuple[ObjectRef, ...]
    sections: Tuple[str, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        return {"type": "GenericResult", "files": [f.to_dict() for f in self.files], "sections": list(self.sections)}


JobDetails = Union[SmartCoverResult, PicProcessResult, MediaResult, GenericResult]


@dataclass(frozen=True)
class JobCallback:
    """A ``TaskFinish`` callback for one media, image, document or AI job."""

    kind: ClassVar[str] = JOB
    event: str
    job_id: str
    tag: Optional[str]
    state: Optional[str]
    code: Optional[str]
    message: Optional[str]
    input: ObjectRef
    outputs: Tuple[ObjectRef, ...]
    details: JobDetails
    workflow: Optional[WorkflowRef] = None
    cos_headers: Mapping[str, str] = field(default_factory=dict)
    queue_id: Optional[str] = None
    created_at: Optional[datetime] = None
    started_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None
    user_data: Optional[str] = None
    legacy: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.job_id

    @property
    def succeeded(self) -> bool:
        return self.state == "Success"

    def to_dict(self) -> Dict[str, Any]:
        return {
            "kind": self.kind,
            "event": self.event,
            "state": self.state,
            "created_at": iso(self.created_at),
            "job_id": self.job_id,
            "tag": self.tag,
            "code": self.code,
            "message": self.message,
            "input": self.input.to_dict(),
            "outputs": [o.to_dict() for o in self.outputs],
            "workflow": self.workflow.to_dict() if self.workflow else None,
            "cos_headers": dict(self.cos_headers),
            "queue_id": self.queue_id,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "user_data": self.user_data,
            "legacy": self.legacy,
            "details": self.details.to_dict(),
        }


@dataclass(frozen=True)
class WorkflowTask:
    """One node of a workflow run."""

    type: Optional[str]
    state: Optional[str]
    job_id: Optional[str]
    name: Optional[str]
    template_id: Optional[str]
    template_name: Optional[str]
    created_at: Optional[datetime]
    ended_at: Optional[datetime]
    code: Optional[str] = None
    message: Optional[str] = None
    outputs: Tuple[str, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        return {
            "type": self.type,
            "state": self.state,
            "job_id": self.job_id,
            "name": self.name,
            "template_id": self.template_id,
            "template_name": self.template_name,
            "created_at": iso(self.created_at),
            "ended_at": iso(self.ended_at),
            "code": self.code,
            "message": self.message,
            "outputs": list(self.outputs),
        }


@dataclass(frozen=True)
class WorkflowCallback:
    """A ``WorkflowFinish`` callback: one run of a workflow over one input object."""

    kind: ClassVar[str] = WORKFLOW
    event: str
    run_id: str
    workflow_id: Optional[str]
    workflow_name: Optional[str]
    state: Optional[str]
    input: ObjectRef
    tasks: Tuple[WorkflowTask, ...]
    cos_headers: Mapping[str, str] = field(default_factory=dict)
    created_at: Optional[datetime] = None
    legacy: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.run_id

    @property
    def tag(self) -> None:
        return None

    @property
    def succeeded(self) -> bool:
        return self.state == "Success"

    def to_dict(self) -> Dict[str, Any]:
        return {
            "kind": self.kind,
            "event": self.event,
            "state": self.state,
            "created_at": iso(self.created_at),
            "run_id": self.run_id,
            "workflow_id": self.workflow_id,
            "workflow_name": self.workflow_name,
            "input": {"bucket": self.input.bucket, "object": self.input.key},
            "tasks": [t.to_dict() for t in self.tasks],
            "cos_headers": dict(self.cos_headers),
            "legacy": self.legacy,
        }


@dataclass(frozen=True)
class ModerationCallback:
    """A content-moderation callback, Simple or Detail form, or the console's test request."""

    kind: ClassVar[str] = MODERATION
    event: Optional[str]
    form: str  # "simple" or "detail"
    job_id: Optional[str]
    state: Optional[str]
    result: Optional[int]
    label: Optional[str]
    score: Optional[Number]
    input: ObjectRef
    url: Optional[str] = None
    code: Optional[int] = None
    message: Optional[str] = None
    is_test: bool = False
    categories: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cos_headers: Mapping[str, str] = field(default_factory=dict)
    created_at: Optional[datetime] = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def id(self) -> Optional[str]:
        return self.job_id

    @property
    def tag(self) -> Optional[str]:
        return self.event

    @property
    def succeeded(self) -> bool:
        return self.state == "Success"

    def to_dict(self) -> Dict[str, Any]:
        return {
            "kind": self.kind,
            "event": self.event,
            "state": self.state,
            "created_at": iso(self.created_at),
            "job_id": self.job_id,
            "result": self.result,
            "label": self.label,
            "score": self.score,
            "input": self.input.to_dict(),
            "url": self.url,
            "form": self.form,
            "is_test": self.is_test,
            "code": self.code,
            "message": self.message,
            "categories": {k: dict(v) for k, v in self.categories.items()},
            "cos_headers": dict(self.cos_headers),
        }


Callback = Union[JobCallback, WorkflowCallback, ModerationCallback]
