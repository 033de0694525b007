"""A Tag this version has no dedicated view for: its outputs are still listed. The last fallback."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..models import JobDetails, ObjectRef
from . import register


@register
@dataclass(frozen=True)
class GenericResult(JobDetails):
    rank: ClassVar[int] = 9
    output_fields: ClassVar[tuple[str, ...]] = ("files",)

    files: tuple[ObjectRef, ...]
    sections: tuple[str, ...] = ()

    @classmethod
    def matches(cls, tag: str | None, operation: Mapping[str, Any]) -> bool:
        return True

    @classmethod
    def from_operation(cls, operation: Mapping[str, Any], files: tuple[ObjectRef, ...],
                       md5: Mapping[str, str]) -> JobDetails:
        return cls(files=files, sections=tuple(k for k in operation if isinstance(k, str)))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "GenericResult", "files": [f.to_dict() for f in self.files], "sections": list(self.sections)}

    def without_outputs(self) -> JobDetails:
        return dataclasses.replace(self, files=())
