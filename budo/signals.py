"""SIGINT/SIGTERM for long-running commands (`budo serve`, `budo sandbox`), never lost.

``loop.add_signal_handler`` can lose a signal that lands while it is being installed: the
C-level handler has fired but no wakeup byte was written yet, and the Python-level handler that
then runs is asyncio's no-op. A plain ``signal.signal`` handler is looked up when Python runs it
(PEP 475 runs handlers even while the loop waits in epoll), so a signal arriving at any moment
after ``StopSignals`` is entered reaches it; one arriving before it is asyncio.Runner's
(it cancels the main task, which ends as Ctrl-C: exit 130).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """The first SIGINT/SIGTERM as an event to await, for as long as the ``with`` block runs
    (enter it inside the running loop, before anything slow, so a Ctrl-C during start-up is
    never lost). Leaving the block puts the previous handlers back."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.received: list[int] = []
        self._restore: Callable[[], None] | None = None

    def __enter__(self) -> StopSignals:
        self._restore = catch_stop_signals(self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._restore is not None:
            self._restore()

    def _on_signal(self, signum: int) -> None:
        self.received.append(signum)
        self.event.set()

    @property
    def first(self) -> int | None:
        return self.received[0] if self.received else None

    def exit_code(self) -> int:
        """130 after Ctrl-C (as everywhere), 0 after SIGTERM (Kubernetes' polite stop)."""
        return 130 if self.first == signal.SIGINT else 0


def catch_stop_signals(on_signal: Callable[[int], None]) -> Callable[[], None]:
    """Route SIGINT/SIGTERM to ``on_signal(signum)`` on the running loop; returns a function
    that puts the previous handlers back."""
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(on_signal, signum)

    for signum in STOP_SIGNALS:
        previous[signum] = signal.signal(signum, handler)

    def restore() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return restore
