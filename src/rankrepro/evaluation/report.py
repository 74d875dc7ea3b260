"""The metrics JSON: what ``rankrepro evaluate`` writes and the paper tables read."""
from __future__ import annotations

import math
import os
import stat
import tempfile
from pathlib import Path

from ..atomic import write_json
from .inputs import EvaluationInputError

SCHEMA_VERSION = 1


def to_json_safe(value):
    """NaN (an undefined metric) becomes null; numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(data: dict, path: str | Path) -> None:
    """Write to a temporary file beside ``path``, then rename: never a half-written file."""
    write_json(path, to_json_safe(data), indent=2, allow_nan=False)


def check_output_path(out: str | Path, inputs=()) -> None:
    """EvaluationInputError unless ``out`` can take the metrics without harm, checked before
    an evaluation that may take minutes: not one of ``inputs`` (also through a symbolic or
    hard link, or another spelling of the path), not an existing folder or special file,
    not a read-only file (the atomic writer renames over a file, which the file's own
    permissions would not stop), and in a folder that exists or can be created and takes
    a new file (tried)."""
    out = Path(out)
    for path in inputs:
        if _same_file(out, Path(path)):
            raise EvaluationInputError(f"{out}: --out is the input file {path}; refusing to overwrite it")
    if out.is_symlink() and not out.exists():
        raise EvaluationInputError(f"{out}: --out is a broken symbolic link")
    if out.exists():
        if out.is_dir():
            raise EvaluationInputError(f"{out}: --out is a folder")
        if not out.is_file():
            raise EvaluationInputError(f"{out}: --out is not a regular file")
        if not out.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(out, os.W_OK):
            raise EvaluationInputError(f"{out}: --out is read-only; refusing to replace it")
    folder = out.absolute().parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise EvaluationInputError(f"{out}: cannot create the folder {folder}: {existing} is not a folder")
    if not existing.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(existing, os.W_OK | os.X_OK):
        raise EvaluationInputError(f"{out}: the folder {existing} is read-only")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".rankrepro-write-test-")
    except OSError as err:
        raise EvaluationInputError(f"{out}: cannot write in the folder {existing} ({err.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)
