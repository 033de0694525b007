"""The I/O adapters one invocation uses, built lazily so a refused request imports nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..settings import Credentials, Settings

if TYPE_CHECKING:  # both load on first use: a refused request imports neither
    from .cos import CosStorage
    from .scf import Scf

_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def pool(size: int) -> ThreadPoolExecutor:
    """A small bounded pool per container for output fan-out."""
    global _pool, _pool_size
    if _pool is None or _pool_size != size:
        previous = _pool
        _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="ci-fanout")
        _pool_size = size
        if previous is not None:  # only when the setting changes (tests, local runs)
            previous.shutdown(wait=False)
    return _pool


class Services:
    def __init__(self, settings: Settings, credentials: Credentials | None = None,
                 deadline: float | None = None) -> None:
        self.settings = settings
        self.credentials = credentials
        self.deadline = deadline
        self._storage: CosStorage | None = None
        self._scf: Scf | None = None

    @classmethod
    def from_env(cls, settings: Settings, deadline: float | None = None) -> Services:
        """The one way an invocation gets its adapters (``Invocation.services`` calls it)."""
        return cls(settings, Credentials.from_env(), deadline)

    @property
    def storage(self) -> CosStorage:
        if self._storage is None:
            from .cos import CosStorage

            self._storage = CosStorage(self.settings, self.credentials, None, self.deadline)
        return self._storage

    @property
    def scf(self) -> Scf:
        """The SCF adapter: the downstream notify and continuations."""
        if self._scf is None:
            from .scf import Scf

            self._scf = Scf(self.settings, self.credentials, None, self.deadline)
        return self._scf

    notifier = scf  # the name it had when it only notified

    @property
    def pool(self) -> ThreadPoolExecutor:
        return pool(self.settings.fanout)
