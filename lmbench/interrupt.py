"""A stop request that SIGTERM/SIGINT set in the worker and the trainer polls at each step.

Minutes of training are worth keeping: while a loop polls (`polling()`), the first signal only
sets a flag, so training ends at the next step and the run is evaluated and recorded as usual.
Outside a polling loop (a count model's one-shot fit, the evaluation), or at a second signal,
the handler raises `Interrupted` so the worker records what it has and exits without hanging.
"""

from __future__ import annotations

import contextlib
import signal

SIGNALS = (signal.SIGTERM, signal.SIGINT)

_received: int | None = None  # the first stop signal's number
_polled = False  # a loop checks `requested()` often: the first signal need not raise


class Interrupted(BaseException):
    """A stop signal arrived where nothing polls: BaseException, so `except Exception` in a
    model or peer does not swallow it."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


def requested() -> bool:
    return _received is not None


def reason() -> str:
    return f"interrupted by {signal.Signals(_received).name}" if _received else "interrupted"


def _handle(signum: int, frame) -> None:
    global _received
    first = _received is None
    if first:
        _received = signum
    if not (first and _polled):
        raise Interrupted(signum)


def install() -> None:
    """In the worker's main thread, before the run starts."""
    for signum in SIGNALS:
        signal.signal(signum, _handle)


def clear() -> None:
    global _received
    _received = None


@contextlib.contextmanager
def polling():
    """Within: the first stop signal only sets the flag (the loop checks `requested()`)."""
    global _polled
    previous, _polled = _polled, True
    try:
        yield
    finally:
        _polled = previous
