"""The Tag registry: each job Tag's typed result, one module per Tag.

A module here defines a ``JobDetails`` subclass (its fields, how it reads CI's ``Operation``
section, what it adds to the index document, how it shrinks for index parts) and marks it
``@register``. Every module beside this one is imported on first use, so a new Tag with a
typed model is one new file. A Tag nobody registered still gets ``MediaResult`` or
``GenericResult``, which list every output.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Mapping
from importlib import import_module
from typing import Any, TypeVar

from ..models import JobDetails, ObjectRef

D = TypeVar("D", bound=type[JobDetails])
_REGISTRY: list[type[JobDetails]] = []
_loaded = False


def register(cls: D) -> D:
    """Add a Tag's view to the registry (its ``rank`` orders the fallbacks after Tags' own views)."""
    _REGISTRY.append(cls)
    _REGISTRY.sort(key=lambda view: view.rank)
    return cls


def details_for(tag: str | None, operation: Mapping[str, Any], files: tuple[ObjectRef, ...],
                md5: Mapping[str, str]) -> JobDetails:
    """The typed result of a job with TAG, read from its ``Operation`` section."""
    global _loaded
    if not _loaded:
        for module in pkgutil.iter_modules(__path__):
            import_module(f"{__name__}.{module.name}")
        _loaded = True
    view = next(view for view in _REGISTRY if view.matches(tag, operation))  # GenericResult matches all
    return view.from_operation(operation, files, md5)


# The built-in views, importable from here (``from ci_callback.results import SmartCoverResult``).
from .generic import GenericResult  # noqa: E402
from .media import MediaResult  # noqa: E402
from .picprocess import PicProcessResult  # noqa: E402
from .smartcover import SmartCoverResult  # noqa: E402

__all__ = ["GenericResult", "MediaResult", "PicProcessResult", "SmartCoverResult", "details_for", "register"]
