"""Files written whole or not at all: a temporary file beside the target, then a rename."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``path`` (parents created, mode 0644) so that no reader ever sees a
    half-written file: a temporary file in the same folder, renamed over ``path``.

    A process killed at any moment leaves either the old file or the new one.  With
    ``durable`` the data and the rename are also flushed to disk (``fsync``), so that a power
    failure cannot leave an empty file under the new name either.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        if durable:
            replace_durably(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, data, *, indent: int = 1, **dumps) -> None:
    """``data`` as JSON (``json.dumps`` with ``indent`` and ``dumps``, a final newline),
    written with :func:`write_atomic`."""
    write_atomic(path, (json.dumps(data, indent=indent, **dumps) + "\n").encode("utf-8"))


def replace_durably(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename the complete file ``tmp`` over ``path`` (same folder) after flushing its data to
    disk, then flush the folder, so the new name never refers to incomplete data."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(Path(path).parent)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (renames, deletions) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
