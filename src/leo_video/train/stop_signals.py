"""Training's stop signals: SIGTERM/SIGINT ask the loop to save a checkpoint after the current step and stop."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

logger = logging.getLogger("leo_video.train.loop")  # the loop's logger: its warnings read as the loop's


class StopSignals:
    """SIGTERM/SIGINT set ``requested`` (stop after this step); a second SIGINT aborts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("got %s: saving a checkpoint after this step, then stopping "
                       "(Ctrl-C again to abort without saving)", signal.Signals(signum).name)  # fmt: skip

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
