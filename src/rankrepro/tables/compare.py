"""Published vs reproduced, cell by cell: the comparison behind every regenerated table.

For each row of a published table (in the paper's order) and each metric, the comparison
holds the number as printed, the reproduced number from the workflow's metrics JSON
(``results/<scale>/metrics/<experiment>.json``) in the paper's units (AP and oLRP in
points) and printed with the same decimals, and Δ = reproduced − published of the printed
values.  A run that has not produced its metrics JSON is *missing* (never zero); quoted
rows (other work) and test-dev rows (COCO's evaluation server) are marked, not compared.

At paper scale each row gets a verdict on the table's primary metric (its first metric in
points: AP, or mask AP for mask tables): ``within`` when |Δ| <= tolerance, else
``outside``.  At smoke scale nothing is comparable: the verdict is ``smoke``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..registry import Registry, Table

#: The AP / oLRP keys the workflow's metrics records hold (with a ``mask_`` prefix for masks).
MEASURED_POINTS = {"AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf",
                   "oLRP", "oLRP_Loc", "oLRP_FP", "oLRP_FN"}


def unit(metric: str) -> str:
    """The unit a metric is printed in: ``points`` (AP, oLRP: 100 x fraction), ``seconds``,
    ``fps``, ``ratio`` (negatives per positive, as logged by the heads), or ``other`` (not
    measured by the workflow: H#, speed-ups, the samplers' desired rates, A.12's AP after the
    first epoch)."""
    if metric.removeprefix("mask_") in MEASURED_POINTS:
        return "points"
    if metric.startswith("time_s"):
        return "seconds"
    if metric == "fps":
        return "fps"
    if metric.startswith("neg_per_pos_") and not metric.endswith("_desired"):
        return "ratio"  # logged by the heads during training (rankrepro.workflow.imbalance)
    return "other"


def lower_is_better(metric: str) -> bool:
    return "oLRP" in metric or metric.startswith("time_s") or metric == "num_hyperparams"


def decimals(printed: str) -> int:
    text = str(printed).strip()
    return len(text.split(".", 1)[1]) if "." in text else 0


@dataclass
class Comparison:
    table: Table
    scale: str
    tolerance: float
    rows: list = field(default_factory=list)  # dicts, see compare()

    @property
    def primary_metric(self) -> str | None:
        """The table's first AP-like column (AP, or mask AP for mask tables)."""
        for metric in self.table.metrics:
            if unit(metric) == "points" and "oLRP" not in metric:
                return metric
        return None

    def row_primary(self, cells: dict) -> str | None:
        """A row's verdict metric: the table's primary where the row has it, else the row's
        own first AP-like cell (Table 10's LVIS row and A.20's segmentation rows publish mask
        AP in the column that holds box AP elsewhere); None for rows without one (A.19)."""
        if self.primary_metric in cells:
            return self.primary_metric
        for metric in cells:
            if unit(metric) == "points" and "oLRP" not in metric:
                return metric
        return None

    # -- summary -------------------------------------------------------------------
    def trained_rows(self) -> list:
        return [r for r in self.rows if not r["quoted"] and r["experiment"] is not None]

    def status(self) -> str:
        """complete (every trained row has its metrics), partial, or not run."""
        trained = self.trained_rows()
        done = [r for r in trained if r["ran"]]
        if not done:
            return "not run"
        return "complete" if len(done) == len(trained) else "partial"

    def summary(self) -> dict:
        primary = self.primary_metric
        compared = [r for r in self.rows if r["verdict"] in ("within", "outside")]
        deltas = [abs(r["cells"][r["primary"]]["delta"]) for r in compared]
        return {
            "table": self.table.key,
            "target": self.table.target,
            "scale": self.scale,
            "status": self.status(),
            "primary_metric": primary,
            "tolerance": self.tolerance,
            "rows": len(self.rows),
            "rows_trained": len(self.trained_rows()),
            "rows_run": sum(r["ran"] for r in self.rows),
            "rows_compared": len(compared),
            "rows_within": sum(r["verdict"] == "within" for r in compared),
            "mean_abs_delta": (sum(deltas) / len(deltas)) if deltas else None,
            "claims": self.claims(),
        }

    def claims(self) -> list[dict]:
        """The paper's ordering claims checked on the reproduced numbers (True / False /
        None when a needed run is missing)."""
        by_key = {}
        for r in self.rows:
            by_key[r["row_id"] + (f"/{r['group']}" if r["group"] else "")] = r
            by_key.setdefault(r["row_id"], r)
        results = []
        for claim in self.table.claims:
            metric = claim["metric"]
            better = by_key.get(claim["better"])
            than = [by_key.get(k) for k in claim["than"]]

            def value(row):
                if row is None:
                    return None
                if row["quoted"] or unit(metric) == "other":  # quoted rows, unmeasured metrics (H#)
                    return row["cells"].get(metric, {}).get("published")
                return row["cells"].get(metric, {}).get("reproduced")

            mine = value(better)
            others = [value(r) for r in than]
            if mine is None or any(o is None for o in others):
                holds = None
            elif lower_is_better(metric):
                holds = all(mine < o for o in others)
            else:
                holds = all(mine > o for o in others)
            results.append({"text": claim.get("text", ""), "metric": metric, "better": claim["better"],
                            "than": list(claim["than"]), "holds": holds})
        return results


def load_metrics(results: str | Path, scale: str, experiment: str) -> dict | None:
    path = Path(results) / scale / "metrics" / f"{experiment}.json"
    if not path.is_file():
        return None
    with open(path) as f:
        return json.load(f)


def compare(reg: Registry, table_key: str, results: str | Path, scale: str, tolerance: float = 0.3) -> Comparison:
    table = reg.table(table_key)
    comparison = Comparison(table=table, scale=scale, tolerance=tolerance)
    for row in reg.rows(table.key):
        record = None if row["quoted"] or row["experiment"] is None else load_metrics(results, scale, row["experiment"])
        implemented = row["experiment"] is not None and reg.experiments[row["experiment"]].implemented
        test_dev = row["split"] == "test-dev"
        cells = {}
        for metric in table.metrics:
            if metric not in row["published"]:
                continue
            published = float(row["published"][metric])
            places = decimals(row["printed"][metric])
            reproduced = delta = None
            if record is not None and not (test_dev and scale == "paper"):
                value = record["metrics"].get(metric)
                if value is not None and not (isinstance(value, float) and math.isnan(value)):
                    kind = unit(metric)
                    if kind == "points":
                        value = 100.0 * value
                    if kind != "other":
                        reproduced = round(value, places)
                        delta = round(reproduced - published, places)
            cells[metric] = {"published": published, "printed": row["printed"][metric], "decimals": places,
                             "reproduced": reproduced, "delta": delta}
        primary = comparison.row_primary(cells)
        if row["quoted"]:
            verdict = "quoted"
        elif row["experiment"] is None:  # cells no run measures (e.g. Table 2's H#, printed once per row)
            verdict = "published only"
        elif not implemented:
            verdict = "not implemented"
        elif record is None:
            verdict = "missing"
        elif test_dev and scale == "paper":
            verdict = "needs server"
        elif scale != "paper":
            verdict = "smoke"
        elif primary is None:
            verdict = "no AP"  # ran, but the row publishes no AP to compare (A.19's times)
        elif cells[primary]["delta"] is not None:
            verdict = "within" if abs(cells[primary]["delta"]) <= tolerance + 1e-9 else "outside"
        else:
            verdict = "missing"
        comparison.rows.append({
            "row_id": row["row_id"], "row": row["row"], "group": row["group"], "experiment": row["experiment"],
            "quoted": row["quoted"], "split": row["split"], "ran": record is not None, "test_dev": test_dev,
            "verdict": verdict, "cells": cells, "note": row.get("note", ""), "primary": primary,
        })
    return comparison
