"""SCF entry point: ``handler: index.main_handler`` with ``src: ./handler``.

Add your own handlers here or in a module imported here, for example::

    from ci_callback.app import router

    @router.on_job("Transcode", state="Success")
    def announce(callback, inv):
        inv.record("announce", outputs=[o.key for o in callback.outputs])
"""

from ci_callback.app import main_handler

__all__ = ["main_handler"]
