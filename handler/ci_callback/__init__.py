"""ci-callback: receive, verify and act on Tencent Cloud Infinite callbacks.

The public names are loaded lazily (PEP 562), so ``import ci_callback`` stays cheap
on a cold start and pulls in nothing heavy.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = [
    "parse_callback",
    "InvalidCallback",
    "Callback",
    "JobCallback",
    "WorkflowCallback",
    "ModerationCallback",
    "SmartCoverResult",
    "PicProcessResult",
    "MediaResult",
    "GenericResult",
    "Invocation",
    "Router",
]
__version__ = "0.1.0"

_EXPORTS = {
    "parse_callback": ".model.parse",
    "InvalidCallback": ".errors",
    "Callback": ".model.models",
    "JobCallback": ".model.models",
    "WorkflowCallback": ".model.models",
    "ModerationCallback": ".model.models",
    "SmartCoverResult": ".model.results",
    "PicProcessResult": ".model.results",
    "MediaResult": ".model.results",
    "GenericResult": ".model.results",
    "Invocation": ".context",
    "Router": ".routing.router",
}

if TYPE_CHECKING:
    from .context import Invocation
    from .errors import InvalidCallback
    from .model.models import Callback, JobCallback, ModerationCallback, WorkflowCallback
    from .model.parse import parse_callback
    from .model.results import GenericResult, MediaResult, PicProcessResult, SmartCoverResult
    from .routing.router import Router


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ci_callback' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
