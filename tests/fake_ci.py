"""The local fake of CI's query API: ``ci_callback_dev.localci`` (the demo serves it too)."""

from ci_callback_dev.localci import *  # noqa: F403 - the tests' import point
from ci_callback_dev.localci import __all__  # noqa: F401
