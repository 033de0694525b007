"""SmartCover: the cover images CI picked, and the settings it used."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .. import readers as r
from ..models import JobDetails, ObjectRef
from . import register


@register
@dataclass(frozen=True)
class SmartCoverResult(JobDetails):
    tags: ClassVar[tuple[str, ...]] = ("SmartCover",)
    output_fields: ClassVar[tuple[str, ...]] = ("covers",)

    covers: tuple[ObjectRef, ...]
    count: int | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    delete_duplicates: bool | None = None

    @classmethod
    def from_operation(cls, operation: Mapping[str, Any], files: tuple[ObjectRef, ...],
                       md5: Mapping[str, str]) -> JobDetails:
        spec = r.mapping(operation.get("SmartCover"))
        return cls(covers=files, count=r.integer(spec.get("Count")), format=r.text(spec.get("Format")),
                   width=r.integer(spec.get("Width")), height=r.integer(spec.get("Height")),
                   delete_duplicates=r.boolean(spec.get("DeleteDuplicates")))

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "SmartCoverResult",
            "covers": [c.to_dict() for c in self.covers],
            "count": self.count,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "delete_duplicates": self.delete_duplicates,
        }

    def index_fields(self) -> dict[str, Any]:
        return {"covers": [c.to_dict() for c in self.covers]}

    def without_outputs(self) -> JobDetails:
        return dataclasses.replace(self, covers=())
