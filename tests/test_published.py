"""Integrity of the published numbers (configs/published/), the experiment registry
(configs/experiments.yaml) and the table registry (configs/tables.yaml)."""
import math
import re
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "configs" / "published"
COLUMNS = ["source", "table", "row_id", "row", "group", "metric", "value", "split", "quoted",
           "reconstructed", "note"]
SOURCES = {"rs_paper", "rs_readme", "brs_readme", "alrp_readme"}
SPLITS = {"minival", "test-dev", "val"}
DATASETS = {"coco", "lvis", "cityscapes"}
UNITS = {"points", "seconds", "fps", "ratio", "count", "x"}
KINDS = {"box", "mask", "time", "other"}
RS_PAPER_TABLES = [str(i) for i in range(1, 11)] + [f"A.{i}" for i in range(11, 21)]
# Printed properties of a method or of a sampler setting: no run produces them, so a cell group
# holding only these (e.g. Table 2's H#, printed once for both detectors) is fed by no experiment.
NOT_MEASURED = {"num_hyperparams", "neg_per_pos_rpn_desired", "neg_per_pos_rcnn_desired"}
SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")
CELL_KEY = ["source", "table", "row_id", "group", "metric"]
GROUP_KEY = ["source", "table", "row_id", "group"]


@lru_cache(maxsize=None)
def cells() -> pd.DataFrame:
    frames = []
    for path in sorted(PUBLISHED.glob("*.csv")):
        if path.name == "metrics.csv":
            continue
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        assert list(frame.columns) == COLUMNS, f"{path.name}: columns {list(frame.columns)}"
        assert len(frame), f"{path.name}: no rows"
        frames.append(frame.assign(_file=path.name))
    return pd.concat(frames, ignore_index=True)


@lru_cache(maxsize=None)
def metrics() -> pd.DataFrame:
    frame = pd.read_csv(PUBLISHED / "metrics.csv", dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["metric", "unit", "kind", "description"]
    return frame


@lru_cache(maxsize=None)
def experiments() -> dict:
    return yaml.safe_load((ROOT / "configs" / "experiments.yaml").read_text())


@lru_cache(maxsize=None)
def tables() -> dict:
    return yaml.safe_load((ROOT / "configs" / "tables.yaml").read_text())


def cell_groups() -> pd.DataFrame:
    """One row per (source, table, row_id, group): quoted flag and its metrics."""
    return (cells().groupby(GROUP_KEY, sort=False)
            .agg(quoted=("quoted", lambda s: set(s)), metrics=("metric", set), split=("split", set))
            .reset_index())


def parse_feed(feed: str) -> tuple:
    parts = feed.split("/")
    assert len(parts) in (3, 4), f"feed {feed!r}: expected <source>/<table>/<row_id>[/<group>]"
    return (parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else "")


def feeds_by_group() -> dict:
    fed = {}
    for exp_id, entry in experiments().items():
        for feed in entry["feeds"]:
            fed.setdefault(parse_feed(feed), []).append(exp_id)
    return fed


# ------------------------------------------------------------------------------ published CSVs
def test_csv_files_one_source_each():
    frame = cells()
    assert set(frame["source"]) == SOURCES
    for name, part in frame.groupby("_file"):
        assert set(part["source"]) == {name[:-4]}, f"{name} holds other sources"


def test_no_duplicate_cells():
    dup = cells()[cells().duplicated(CELL_KEY, keep=False)]
    assert dup.empty, f"duplicate cells:\n{dup[CELL_KEY]}"


def test_values_numeric_and_finite():
    for _, row in cells().iterrows():
        value = float(row["value"])  # ValueError for anything not a number
        assert math.isfinite(value), row.to_dict()
        assert row["value"].strip() == row["value"] and row["value"] != ""


def test_fields_valid():
    frame = cells()
    assert set(frame["split"]) <= SPLITS
    assert set(frame["quoted"]) <= {"true", "false"}
    assert set(frame["metric"]) <= set(metrics()["metric"]), set(frame["metric"]) - set(metrics()["metric"])
    bad_ids = sorted({r for r in frame["row_id"] if not SNAKE.match(r)})
    assert not bad_ids, f"row_id not snake_case: {bad_ids}"
    assert (frame["row"].str.strip() != "").all()
    paper_tables = set(frame.loc[frame["source"] == "rs_paper", "table"])
    assert paper_tables == set(RS_PAPER_TABLES), paper_tables ^ set(RS_PAPER_TABLES)
    readme_tables = set(frame.loc[frame["source"] != "rs_paper", "table"])
    assert all(SNAKE.match(t) for t in readme_tables), readme_tables
    # group values are usable in feed paths
    assert all("/" not in g and g.strip() == g for g in frame["group"])


def test_quoted_flag_constant_per_row():
    per_row = cells().groupby(["source", "table", "row_id"])["quoted"].nunique()
    assert (per_row == 1).all(), per_row[per_row > 1]


def test_metrics_vocabulary():
    frame = metrics()
    assert not frame["metric"].duplicated().any()
    assert set(frame["unit"]) <= UNITS
    assert set(frame["kind"]) <= KINDS
    assert (frame["description"].str.len() > 0).all()
    for _, row in frame.iterrows():
        assert row["metric"].startswith("mask_") == (row["kind"] == "mask"), row["metric"]
        assert ("higher is better" in row["description"]) + ("lower is better" in row["description"]) \
            + ("neither better" in row["description"]) == 1, row["metric"]


# ------------------------------------------------------------------------------ experiment registry
def test_every_measured_cell_group_fed_exactly_once():
    fed = feeds_by_group()
    problems = []
    for _, group in cell_groups().iterrows():
        key = tuple(group[k] for k in GROUP_KEY)
        feeders = fed.get(key, [])
        if group["quoted"] == {"true"} or group["metrics"] <= NOT_MEASURED:
            if feeders:
                problems.append(f"{key} is quoted / not measured but fed by {feeders}")
        elif len(feeders) != 1:
            problems.append(f"{key} fed by {feeders or 'no experiment'}")
    assert not problems, "\n".join(problems)


def test_every_feed_names_a_cell_group():
    existing = {tuple(g[k] for k in GROUP_KEY) for _, g in cell_groups().iterrows()}
    bad = [(exp, feed) for exp, entry in experiments().items() for feed in entry["feeds"]
           if parse_feed(feed) not in existing]
    assert not bad, bad
    for exp, entry in experiments().items():
        assert len(entry["feeds"]) == len(set(entry["feeds"])), exp


def test_experiment_entries_schema():
    # smoke_iters and resources (mem_mb, runtime) are optional per-experiment workflow settings
    allowed = {"config", "missing", "dataset", "gpus", "images_per_gpu", "checkpoint", "splits", "feeds",
               "smoke_iters", "resources"}
    for exp_id, entry in experiments().items():
        assert set(entry) <= allowed, (exp_id, set(entry) - allowed)
        assert ("config" in entry) != ("missing" in entry), f"{exp_id}: exactly one of config / missing"
        if "missing" in entry:
            assert isinstance(entry["missing"], str) and entry["missing"].strip(), exp_id
        else:
            assert Path(entry["config"]).stem == exp_id, f"{exp_id}: id must be the config's file stem"
            assert (ROOT / entry["config"]).is_file(), f"{exp_id}: {entry['config']} does not exist"
        assert entry["dataset"] in DATASETS, exp_id
        assert isinstance(entry["gpus"], int) and entry["gpus"] > 0, exp_id
        assert isinstance(entry["images_per_gpu"], int) and entry["images_per_gpu"] > 0, exp_id
        assert re.fullmatch(r"epoch_\d+\.pth", entry["checkpoint"]), exp_id
        assert entry["splits"] and set(entry["splits"]) <= SPLITS, exp_id
        assert entry["feeds"], f"{exp_id} feeds nothing"


def test_experiment_splits_cover_fed_cells():
    frame = cells()
    for exp_id, entry in experiments().items():
        for feed in entry["feeds"]:
            src, table, row_id, group = parse_feed(feed)
            sel = frame[(frame.source == src) & (frame.table == table) & (frame.row_id == row_id)
                        & (frame.group == group) & ~frame.metric.isin(NOT_MEASURED)]
            assert set(sel["split"]) <= set(entry["splits"]), (exp_id, feed, set(sel["split"]))
            expected = {"coco": {"minival", "test-dev"}, "lvis": {"val"}, "cityscapes": {"val"}}[entry["dataset"]]
            assert set(sel["split"]) <= expected, (exp_id, feed, entry["dataset"])


def detector_configs() -> list:
    return sorted(p for p in (ROOT / "configs").glob("*/*.py") if p.parent.name != "published")


def feeds_comment(path: Path) -> str:
    """The text of the config's leading-comment "Feeds:" paragraph ('' when it has none)."""
    lines, taking = [], False
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text.startswith("Feeds:"):
            taking, text = True, text[len("Feeds:"):]
        elif taking and (not text or re.match(r"^(Official|Not matched)\b", text)):
            break
        if taking:
            lines.append(text)
    return " ".join(lines).strip()


def names_published_rows(path: Path) -> bool:
    text = feeds_comment(path)
    return bool(text) and not re.match(r"^no\b", text, re.IGNORECASE)


def test_configs_naming_published_rows_are_registered():
    registered = {entry["config"] for entry in experiments().values() if "config" in entry}
    unregistered = [str(p.relative_to(ROOT)) for p in detector_configs()
                    if names_published_rows(p) and str(p.relative_to(ROOT)) not in registered]
    assert not unregistered, f"configs naming published rows but not in configs/experiments.yaml: {unregistered}"


def test_registry_feeds_the_tables_config_comments_name():
    """Each RS paper table / README a config's "Feeds:" comment names is among its feeds."""
    by_config = {entry["config"]: entry for entry in experiments().values() if "config" in entry}
    problems = []
    for path in detector_configs():
        rel = str(path.relative_to(ROOT))
        if rel not in by_config:
            continue
        text = feeds_comment(path)
        feeds = [parse_feed(f) for f in by_config[rel]["feeds"]]
        # "Table N" of the RS paper; "the paper's Table 4" in the aLRP configs is the aLRP paper's
        named = set(re.findall(r"(?<!paper's )Table (A\.\d+|\d+)", text))
        missing = {t for t in named if ("rs_paper", t) not in {(f[0], f[1]) for f in feeds}}
        for phrase, source in (("Bucketed README", "brs_readme"), ("RS README", "rs_readme"),
                               ("aLRP README", "alrp_readme")):
            if phrase in text and source not in {f[0] for f in feeds}:
                missing.add(source)
        if missing:
            problems.append(f"{rel}: comment names {sorted(missing)}, registry feeds {by_config[rel]['feeds']}")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def load_config():
    """Config.fromfile with mmengine's per-call package look-ups memoised (each ``mmdet::``
    base otherwise re-reads mmdet's ~100 metafiles and reloads pkg_resources: ~0.7 s a config)."""
    pytest.importorskip("mmdet")
    import mmengine.config.config as config_module
    from mmengine.config import Config

    def memoised(fn):  # caches raised exceptions too (mmengine uses ValueError for "not in a metafile")
        results = {}

        def wrapper(*args):
            if args not in results:
                try:
                    results[args] = (True, fn(*args))
                except Exception as error:  # noqa: BLE001 - re-raised below, as the original
                    results[args] = (False, error)
            ok, value = results[args]
            if ok:
                return value
            raise value
        return wrapper

    with pytest.MonkeyPatch.context() as patch:
        for name in ("_get_external_cfg_path", "is_installed", "get_installed_path"):
            patch.setattr(config_module, name, memoised(getattr(config_module, name)))
        yield lru_cache(maxsize=None)(
            lambda rel: Config.fromfile(str(ROOT / rel), import_custom_modules=False))


@pytest.mark.parametrize("exp_id", sorted(e for e, v in experiments().items() if "config" in v))
def test_published_batch_matches_config(exp_id, load_config):
    entry = experiments()[exp_id]
    cfg = load_config(entry["config"])
    assert entry["gpus"] * entry["images_per_gpu"] == cfg.auto_scale_lr.base_batch_size, exp_id
    assert entry["images_per_gpu"] == cfg.train_dataloader.batch_size, exp_id


# ------------------------------------------------------------------------------ table registry
def table_rows(key: str) -> set:
    src, table = key.split("/", 1)
    frame = cells()
    sel = frame[(frame.source == src) & (frame.table == table)]
    rows = set(sel["row_id"])
    return rows | {f"{r}/{g}" for r, g in zip(sel["row_id"], sel["group"]) if g}


def column_metrics(columns) -> list:
    out = []
    for col in columns:
        if isinstance(col, dict):
            assert set(col) == {"group", "metrics"}, col
            out += [(col["group"], m) for m in col["metrics"]]
        else:
            out.append(("", col))
    return out


def test_tables_registry_matches_csv():
    registry = tables()
    csv_tables = {f"{s}/{t}" for s, t in cells()[["source", "table"]].drop_duplicates().itertuples(index=False)}
    assert set(registry) == csv_tables, set(registry) ^ csv_tables
    known = set(metrics()["metric"])
    for key, entry in registry.items():
        assert set(entry) <= {"title", "split", "columns", "note", "claims"}, key
        assert isinstance(entry["title"], str) and entry["title"].strip(), key
        assert isinstance(entry["split"], list) and set(entry["split"]) <= SPLITS, key
        src, table = key.split("/", 1)
        sel = cells()[(cells().source == src) & (cells().table == table)]
        assert len(sel), f"{key} has no rows"
        assert set(sel["split"]) == set(entry["split"]), (key, set(sel["split"]))
        cols = column_metrics(entry["columns"])
        assert len(cols) == len(set(cols)), f"{key}: repeated column"
        assert {m for _, m in cols} <= known, key
        grouped = any(isinstance(c, dict) for c in entry["columns"])
        used = {(g if grouped else "", m) for g, m in zip(sel["group"], sel["metric"])}
        assert used <= set(cols), f"{key}: cells outside the declared columns: {used - set(cols)}"


def test_claims_name_existing_rows():
    known = set(metrics()["metric"])
    for key, entry in tables().items():
        rows = table_rows(key)
        src, table = key.split("/", 1)
        frame = cells()
        sel = frame[(frame.source == src) & (frame.table == table)]
        have = {(r, g, m) for r, g, m in zip(sel["row_id"], sel["group"], sel["metric"])}
        for claim in entry["claims"]:
            assert set(claim) == {"metric", "better", "than", "text"}, (key, claim)
            assert claim["metric"] in known, (key, claim)
            assert claim["text"].strip() and claim["than"], (key, claim)
            for ref in [claim["better"], *claim["than"]]:
                assert ref in rows, f"{key}: claim names unknown row {ref!r}"
            for ref in [claim["better"], *claim["than"]]:
                row_id, _, group = ref.partition("/")
                assert (row_id, group, claim["metric"]) in have, f"{key}: {ref} has no published {claim['metric']}"
