"""The per-invocation context handlers and actions receive beside the callback."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .settings import Settings

if TYPE_CHECKING:  # annotations only: the adapters load with the first real callback
    from .checkpoint import Pending
    from .services import Services


@dataclass
class Invocation:
    """One invocation: request id, settings, services, deadline, the actions taken and
    the fields of its closing log line."""

    request_id: str | None = None
    settings: Settings = field(default_factory=Settings)
    # The I/O adapters (COS, SCF, the work pool) the entry attaches before any handler or action
    # runs; None in the pure core. Handlers and actions read them as ``inv.services``.
    attached: Services | None = None
    deadline: float | None = None  # time.monotonic() by which to be done
    actions: list[dict[str, Any]] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)  # added to the invocation's "callback" log line
    # How the callback arrived: "url" (Function URL / API Gateway), "queue" (CMQ), "reconcile"
    # (found by the sweep in CI's list), "replay" (re-driven from the inbox), "continuation".
    source: str = "url"
    started: float = field(default_factory=time.monotonic)
    scf: dict[str, Any] = field(default_factory=dict)  # the SCF context (function_name, namespace…), if any
    step: int = 1  # in a chain of continuations: 1 = the delivery itself
    resume: dict[str, Any] | None = None  # a checkpoint's "tasks" (what is finished), when resuming earlier work
    pending: Pending | None = None  # work left at the work deadline: the pipeline checkpoints and continues it

    def record(self, action: str, **details: Any) -> None:
        self.actions.append({"action": action, **details})

    @property
    def services(self) -> Services:
        """COS (``.storage``), SCF (``.scf``) and the work pool (``.pool``): the one name handlers use."""
        if self.attached is None:
            raise RuntimeError("no services on this invocation (the entry attaches them before acting)")
        return self.attached

    @services.setter
    def services(self, services: Services) -> None:
        self.attached = services
