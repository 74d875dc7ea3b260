"""The papers as data: the experiment registry, the table registry and the published numbers.

Three files under ``configs/`` (the registry, not the workflow rules, knows the papers):

* ``configs/published/*.csv``: every published cell, long format
  (``source, table, row_id, row, group, metric, value, split, quoted, reconstructed, note``);
  ``configs/published/metrics.csv`` is the metric vocabulary (unit, kind).
* ``configs/tables.yaml``: one entry per published table, keyed ``<source>/<table>``
  (``rs_paper/2``, ``brs_readme/atss``): title, split, columns, ordering claims.
* ``configs/experiments.yaml``: one entry per trained model: mmdet config (or ``missing``:
  what is not implemented yet), dataset, published GPUs x images per GPU, the checkpoint
  to test, evaluation splits, and ``feeds``: the published rows it produces, as
  ``<source>/<table>/<row_id>`` or ``<source>/<table>/<row_id>/<group>``.

A table's rows are the CSV rows in the paper's order; a row is either quoted from other
work (compared, never trained) or fed by exactly one experiment (``tests/test_published.py``
checks this).  :func:`target_name` gives each table's workflow target.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import RankReproError

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = REPO_ROOT / "configs"

SOURCES = ("rs_paper", "rs_readme", "brs_readme", "alrp_readme")
CSV_COLUMNS = ("source", "table", "row_id", "row", "group", "metric", "value", "split", "quoted", "reconstructed", "note")


class RegistryError(RankReproError):
    """A registry file is malformed, or a name (table, experiment) is unknown."""


@dataclass(frozen=True)
class Experiment:
    id: str
    dataset: str
    gpus: int
    images_per_gpu: int
    checkpoint: str
    splits: tuple
    feeds: tuple
    config: str | None = None
    missing: str | None = None
    smoke_iters: int | None = None
    resources: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def batch_size(self) -> int:
        return self.gpus * self.images_per_gpu

    @property
    def implemented(self) -> bool:
        return self.config is not None


@dataclass(frozen=True)
class Table:
    key: str  # "<source>/<table>"
    title: str
    split: str
    columns: tuple  # ((group, (metric, ...)), ...); group "" when the table has none
    claims: tuple = ()

    @property
    def source(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def table(self) -> str:
        return self.key.split("/", 1)[1]

    @property
    def target(self) -> str:
        return target_name(self.key)

    @property
    def metrics(self) -> tuple:
        seen = []
        for _, metrics in self.columns:
            seen.extend(m for m in metrics if m not in seen)
        return tuple(seen)


def target_name(table_key: str) -> str:
    """``rs_paper/2`` -> ``reproduce_table2``, ``rs_paper/A.11`` -> ``reproduce_tableA11``,
    ``brs_readme/faster_rcnn`` -> ``reproduce_brs_readme_faster_rcnn``."""
    source, _, table = table_key.partition("/")
    if not table:
        raise RegistryError(f"a table key is '<source>/<table>', got {table_key!r}")
    if source == "rs_paper":
        return "reproduce_table" + table.replace(".", "")
    return f"reproduce_{source}_{re.sub(r'[^0-9A-Za-z]+', '_', table).strip('_')}"


def _read_mapping(path: Path, what: str) -> dict:
    """A registry YAML file: a mapping (empty file: empty mapping); else a clear error."""
    import yaml

    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise RegistryError(f"{path}: missing") from None
    except yaml.YAMLError as err:
        raise RegistryError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise RegistryError(f"{path}: expected a mapping of {what}")
    return raw


def _as_tuple(value) -> tuple:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def load_experiments(path: str | Path | None = None) -> dict[str, Experiment]:
    path = Path(path) if path else CONFIGS / "experiments.yaml"
    raw = _read_mapping(path, "experiment ids")
    experiments = {}
    for exp_id, entry in raw.items():
        if not isinstance(entry, dict):
            raise RegistryError(f"{path}: experiment {exp_id!r} is not a mapping")
        try:
            experiments[exp_id] = Experiment(
                id=exp_id,
                config=entry.get("config"),
                missing=entry.get("missing"),
                dataset=entry["dataset"],
                gpus=int(entry["gpus"]),
                images_per_gpu=int(entry["images_per_gpu"]),
                checkpoint=entry["checkpoint"],
                splits=_as_tuple(entry.get("splits", ["minival"])),
                feeds=_as_tuple(entry.get("feeds")),
                smoke_iters=entry.get("smoke_iters"),
                resources=dict(entry.get("resources") or {}),
            )
        except KeyError as err:
            raise RegistryError(f"{path}: experiment {exp_id!r} lacks {err.args[0]!r}") from None
        if (experiments[exp_id].config is None) == (experiments[exp_id].missing is None):
            raise RegistryError(f"{path}: experiment {exp_id!r} needs exactly one of 'config' and 'missing'")
    return experiments


def load_tables(path: str | Path | None = None) -> dict[str, Table]:
    path = Path(path) if path else CONFIGS / "tables.yaml"
    raw = _read_mapping(path, "'<source>/<table>' keys")
    tables = {}
    for key, entry in raw.items():
        columns = []
        for col in entry.get("columns") or []:
            if isinstance(col, dict):
                columns.append((str(col.get("group") or ""), tuple(col["metrics"])))
            else:
                columns.append(("", (col,)))
        # consecutive plain metrics form one ungrouped block
        merged = []
        for group, metrics in columns:
            if merged and group == "" and merged[-1][0] == "":
                merged[-1] = ("", merged[-1][1] + metrics)
            else:
                merged.append((group, metrics))
        tables[key] = Table(
            key=key,
            title=str(entry.get("title", key)),
            split=", ".join(_as_tuple(entry.get("split", "minival"))),
            columns=tuple(merged),
            claims=tuple(entry.get("claims") or ()),
        )
    return tables


def load_published(directory: str | Path | None = None):
    """All published cells as one DataFrame (``value`` float, ``quoted`` bool), file order kept."""
    import pandas as pd

    directory = Path(directory) if directory else CONFIGS / "published"
    frames = []
    for path in sorted(directory.glob("*.csv")):
        if path.name == "metrics.csv":
            continue
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        missing = [c for c in CSV_COLUMNS if c not in frame.columns]
        if missing:
            raise RegistryError(f"{path}: missing columns {missing}")
        frame["file"] = path.name
        frames.append(frame)
    if not frames:
        raise RegistryError(f"{directory}: no published CSV files")
    cells = pd.concat(frames, ignore_index=True)
    cells["value_text"] = cells["value"]  # as printed: its decimals set the reproduced value's
    try:
        cells["value"] = pd.to_numeric(cells["value"], errors="raise")
    except ValueError as err:
        raise RegistryError(f"{directory}: a published value is not a number: {err}") from None
    cells["quoted"] = cells["quoted"].str.lower().map({"true": True, "false": False, "": False})
    if cells["quoted"].isna().any():
        bad = cells[cells["quoted"].isna()].iloc[0]
        raise RegistryError(f"{bad['file']}: 'quoted' must be true or false (row {bad['row_id']!r})")
    return cells


def feed_key(source: str, table: str, row_id: str, group: str = "") -> str:
    return f"{source}/{table}/{row_id}" + (f"/{group}" if group else "")


@dataclass
class Registry:
    experiments: dict
    tables: dict
    cells: object  # pandas DataFrame

    @classmethod
    @lru_cache(maxsize=4)
    def load(cls, configs_dir: str | None = None) -> "Registry":
        base = Path(configs_dir) if configs_dir else CONFIGS
        return cls(
            experiments=load_experiments(base / "experiments.yaml"),
            tables=load_tables(base / "tables.yaml"),
            cells=load_published(base / "published"),
        )

    # -- lookups ------------------------------------------------------------------
    def table(self, key_or_target: str) -> Table:
        if key_or_target in self.tables:
            return self.tables[key_or_target]
        for table in self.tables.values():
            if table.target == key_or_target or table.target == "reproduce_" + key_or_target:
                return table
        known = ", ".join(sorted(t.target.removeprefix("reproduce_") for t in self.tables.values()))
        raise RegistryError(f"unknown table {key_or_target!r}; known tables: {known}")

    def feeders(self) -> dict[str, str]:
        """feed key -> experiment id."""
        out = {}
        for exp in self.experiments.values():
            for key in exp.feeds:
                if key in out:
                    raise RegistryError(f"{key} is fed by both {out[key]} and {exp.id}")
                out[key] = exp.id
        return out

    def rows(self, table_key: str):
        """The table's row groups in the paper's order: one per (row_id, group), with
        the experiment that feeds it (None for quoted rows)."""
        table = self.table(table_key)
        cells = self.cells[(self.cells["source"] == table.source) & (self.cells["table"] == table.table)]
        feeders = self.feeders()
        rows = []
        for (row_id, group), part in cells.groupby(["row_id", "group"], sort=False):
            first = part.iloc[0]
            rows.append(
                dict(
                    row_id=row_id,
                    row=first["row"],
                    group=group,
                    quoted=bool(first["quoted"]),
                    split=first["split"],
                    experiment=feeders.get(feed_key(table.source, table.table, row_id, group)),
                    published={m: v for m, v in zip(part["metric"], part["value"])},
                    printed={m: v for m, v in zip(part["metric"], part["value_text"])},
                    note="; ".join(n for n in part["note"].unique() if n),
                )
            )
        return rows

    def table_experiments(self, table_key: str) -> list[str]:
        """Experiment ids that a table needs, in row order, each once."""
        out = []
        for row in self.rows(table_key):
            if row["experiment"] and row["experiment"] not in out:
                out.append(row["experiment"])
        return out

    def unimplemented(self, table_key: str) -> list[str]:
        return [e for e in self.table_experiments(table_key) if not self.experiments[e].implemented]
