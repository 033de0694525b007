"""Any media Tag with a ``MediaResult`` section (Transcode, Snapshot, Segment, …): its files
and their MD5s. A fallback: a Tag's own view, when one is registered, comes first."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..models import JobDetails, ObjectRef
from . import register


@register
@dataclass(frozen=True)
class MediaResult(JobDetails):
    rank: ClassVar[int] = 5
    output_fields: ClassVar[tuple[str, ...]] = ("files", "md5")

    files: tuple[ObjectRef, ...]
    md5: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def matches(cls, tag: str | None, operation: Mapping[str, Any]) -> bool:
        return "MediaResult" in operation

    @classmethod
    def from_operation(cls, operation: Mapping[str, Any], files: tuple[ObjectRef, ...],
                       md5: Mapping[str, str]) -> JobDetails:
        return cls(files=files, md5=dict(md5))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "MediaResult", "files": [f.to_dict() for f in self.files], "md5": dict(self.md5)}

    def without_outputs(self) -> JobDetails:
        return dataclasses.replace(self, files=(), md5={})

    def output_md5(self) -> Mapping[str, str]:
        return self.md5
