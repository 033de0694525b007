"""PicProcess: the processed image and what CI measured before and after."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .. import readers as r
from ..models import ImageInfo, JobDetails, ObjectRef
from . import register


def image_info(info: Mapping[str, Any], etag: Any = None) -> ImageInfo:
    return ImageInfo(
        format=r.text(info.get("Format")),
        width=r.integer(info.get("Width")),
        height=r.integer(info.get("Height")),
        quality=r.integer(info.get("Quality")),
        size=r.integer(info.get("Size")),
        etag=r.etag(etag if etag is not None else info.get("Etag")),
        orientation=r.integer(info.get("Orientation")),
        ave=r.text(info.get("Ave")),
    )


@register
@dataclass(frozen=True)
class PicProcessResult(JobDetails):
    tags: ClassVar[tuple[str, ...]] = ("PicProcess",)

    output: ObjectRef | None
    original: ImageInfo
    processed: ImageInfo

    @classmethod
    def from_operation(cls, operation: Mapping[str, Any], files: tuple[ObjectRef, ...],
                       md5: Mapping[str, str]) -> JobDetails:
        result = r.mapping(operation.get("PicProcessResult"))
        original = r.mapping(result.get("OriginalInfo"))
        return cls(output=files[0] if files else None,
                   original=image_info(r.mapping(original.get("ImageInfo")), original.get("Etag")),
                   processed=image_info(r.mapping(result.get("ProcessResult"))))

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "PicProcessResult",
            "output": self.output.to_dict() if self.output else None,
            "original": self.original.to_dict(),
            "processed": self.processed.to_dict(),
        }

    def index_fields(self) -> dict[str, Any]:
        return {"original": self.original.to_dict(), "processed": self.processed.to_dict()}
