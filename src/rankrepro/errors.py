"""The project's error type for bad input (files, folders, options, checkpoints)."""
from __future__ import annotations


class RankReproError(ValueError):
    """Bad input to rankrepro, with a message that says what and where (a file, a folder, an
    option).  The command line prints it as ``rankrepro <command>: error: <message>`` and exits
    with status 2; any other exception is a bug and keeps its traceback.

    A :class:`ValueError`, so callers that caught the ``ValueError`` raised before this type
    existed keep working.
    """
