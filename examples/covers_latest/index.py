"""SCF entry point of the example: the package's main_handler, plus the rules beside it.

Copy this file and latest_cover.py into handler/ to deploy them; latest_cover.py ships in the
code zip beside index.py.
"""

import latest_cover  # noqa: F401 - registers its handler on the default router
from ci_callback.app import main_handler

__all__ = ["main_handler"]
