"""Errors a user can act on. The CLI turns each into one line on stderr and exit status 2."""

import errno


class LmbenchError(Exception):
    """Base class: the message says what was wrong and what to do."""


class UsageError(LmbenchError):
    """Bad command line: unknown corpus or model, malformed --set, unavailable device."""


class DataError(LmbenchError):
    """A corpus file is missing, corrupted, undecodable or empty. The message names the file."""


class ProtocolError(LmbenchError):
    """A model broke the evaluation protocol (wrong number of predicted tokens, bad values)."""


class SkipRun(LmbenchError):
    """A run that cannot happen here (a peer tool is absent): recorded as `skipped` with the reason."""


class DiskFull(LmbenchError):
    """A record or artifact could not be written for lack of space. The CLI exits 1 (the runs
    finished so far are intact), not 2: the command itself was right."""

    def __init__(self, message: str, path=None, needed: int = 0, free: int | None = None):
        super().__init__(message)
        self.path, self.needed, self.free = path, needed, free


def is_disk_full_error(exc: BaseException) -> bool:
    """An OSError of a full disk or quota, whoever raised it."""
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
