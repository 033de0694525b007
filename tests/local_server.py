"""The local fakes' thread-server plumbing lives in the dev package (the demo serves fakes too)."""

from ci_callback_dev.wsgiserver import LocalWSGIServer

__all__ = ["LocalWSGIServer"]
