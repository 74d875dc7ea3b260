"""The metrics JSON: what ``rankrepro evaluate`` writes and the paper tables read."""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..atomic import write_atomic

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
    text = json.dumps(to_json_safe(data), indent=2, allow_nan=False) + "\n"
    write_atomic(path, text.encode("utf-8"))
