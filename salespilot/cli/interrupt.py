"""Ctrl-C ends any command with one line and status 130: no traceback, no noise at exit.

The terminal sends Ctrl-C to every process of the command, Prefect's local server too, so
what fails after it (a flow's "connection refused") is the interrupt, not an error to report.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

INTERRUPTED = threading.Event()


def _on_sigint(signum: int, frame: object) -> None:
    if INTERRUPTED.is_set():  # a second Ctrl-C while cleaning up: leave at once, quietly
        os._exit(130)
    INTERRUPTED.set()
    raise KeyboardInterrupt


def run_interruptible(app: Callable[[], object]) -> None:
    """Run the command line ``app``; after a Ctrl-C say so in one line and exit 130."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        app()
    except SystemExit:
        if not INTERRUPTED.is_set():
            raise
    except KeyboardInterrupt:
        pass
    else:
        if not INTERRUPTED.is_set():
            return
    sys.stderr.write("interrupted\n")
    sys.stderr.flush()
    sys.exit(130)
