"""The per-invocation context handlers and actions receive beside the callback."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .settings import Settings

if TYPE_CHECKING:  # annotations only: the adapters load with the first real callback
    from .adapters.services import Services
    from .checkpoint import Pending


@dataclass
class Invocation:
    """One invocation: request id, settings, services, deadline, the actions taken and
    the fields of its closing log line."""

    request_id: str | None = None
    settings: Settings = field(default_factory=Settings)
    # The I/O adapters (COS, SCF, the work pool), when the entry was handed some (tests, the
    # CLI, benchmarks); otherwise built from the environment on first use (``services``).
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
        """COS (``.storage``), SCF (``.scf``) and the work pool (``.pool``): the one name handlers
        and actions use. Built from the environment on first use, the one place they are built
        (a refused request never gets here, so it imports none of them)."""
        if self.attached is None:
            from .adapters.services import Services  # the adapters load with the first real work

            self.attached = Services.from_env(self.settings, self.deadline)
        return self.attached

    @services.setter
    def services(self, services: Services) -> None:
        self.attached = services

    def child(self, request_id: str, source: str, *, deadline: float | None = None,
              settings: Settings | None = None) -> Invocation:
        """One item of this invocation (a queue record, a swept job, a replayed body): its own
        request id, log fields and actions, this invocation's adapters and SCF context."""
        item = Invocation(request_id=request_id, settings=settings or self.settings, attached=self.services,
                          deadline=self.deadline if deadline is None else deadline, source=source, scf=self.scf)
        item.fields.update(request_id=request_id, source=source)
        return item
