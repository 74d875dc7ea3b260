"""COCO-style AP (pycocotools) and oLRP from one ``COCOeval`` run."""
from __future__ import annotations

import contextlib
import io
import math

import numpy as np
from pycocotools.cocoeval import COCOeval

from .lrp import TAU, check_olrp_options, class_olrp, mean_components
from .matches import class_matches

AP_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def evaluate_coco(
    coco_gt,
    detections: list[dict],
    iou_type: str = "bbox",
    score_grid: float | None = None,
    img_ids: list | None = None,
    cat_ids: list | None = None,
    olrp_mode: str = "official",
) -> dict:
    """AP keys of ``COCOeval.summarize()`` and oLRP (tau = 0.5) with components.

    Args:
        coco_gt: a ``pycocotools.coco.COCO`` (or mmdet's subclass) with the ground truth.
        detections: COCO results format (``image_id``, ``category_id``, ``score`` and
            ``bbox`` or ``segmentation``), already validated against ``coco_gt``.
        iou_type: ``bbox`` or ``segm``.
        score_grid: with ``olrp_mode='threshold'``, see :func:`rankrepro.evaluation.lrp.class_olrp`.
        img_ids, cat_ids: evaluate only these images / categories (default: all).
        olrp_mode: 'official' (the LRP-Error evaluator's minimum over ranks) or 'threshold'
            (see :mod:`rankrepro.evaluation.lrp`).

    Returns fractions in [0, 1]; an undefined value (e.g. APs without small objects,
    pycocotools' -1) is NaN.  ``per_class`` maps category names to AP, oLRP, its
    components, the LRP-optimal score threshold and TP/FP counts.  Without detections
    every class with ground truth has AP 0 and oLRP 1 (oLRP_FN 1, other components NaN).
    """
    check_olrp_options(olrp_mode, score_grid)
    cat_ids = sorted(cat_ids if cat_ids is not None else coco_gt.getCatIds())
    if detections:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress and the table
            evaluator = COCOeval(coco_gt, coco_gt.loadRes(detections), iou_type)
            evaluator.params.catIds = cat_ids
            if img_ids is not None:
                evaluator.params.imgIds = list(img_ids)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        stats = evaluator.stats[: len(AP_KEYS)]
        per_class_ap = class_ap(evaluator.eval["precision"][:, :, :, 0, -1], evaluator.params.catIds)
        lrps = class_lrps(evaluator, score_grid, olrp_mode)
    else:
        num_gt = _non_ignored_gt_counts(coco_gt, cat_ids, img_ids)
        stats = [0.0 if any(num_gt.values()) else math.nan] * len(AP_KEYS)
        per_class_ap, lrps = without_detections(num_gt)
    return assemble(dict(zip(AP_KEYS, stats)), lrps, coco_gt.loadCats(cat_ids), per_class_ap)


def class_ap(precision: np.ndarray, cat_ids) -> dict:
    """AP per class from an evaluator's accumulated precision (T x R x K, one area range
    and maxDets), averaged over the defined (> -1) entries, as ``summarize()`` does."""
    result = {}
    for k, cat_id in enumerate(cat_ids):
        values = precision[:, :, k]
        values = values[values > -1]
        result[cat_id] = float(values.mean()) if values.size else math.nan
    return result


def class_lrps(evaluator, score_grid: float | None, olrp_mode: str = "official") -> dict:
    """oLRP of every class from an evaluated COCOeval / LVISEval."""
    return {
        c: class_olrp(m.scores, m.is_tp, m.ious, m.num_gt, TAU, score_grid, olrp_mode, m.top_ignored_score)
        for c, m in class_matches(evaluator, TAU).items()
    }


def without_detections(num_gt: dict) -> tuple[dict, dict]:
    """Per-class AP and oLRP when there are no detections: AP 0 and oLRP 1 for classes
    with ground truth, NaN for the others."""
    empty = np.zeros(0)
    per_class_ap = {c: (0.0 if n else math.nan) for c, n in num_gt.items()}
    return per_class_ap, {c: class_olrp(empty, empty.astype(bool), empty, n) for c, n in num_gt.items()}


def assemble(stats: dict, lrps: dict, categories: list[dict], per_class_ap: dict) -> dict:
    """The metrics dict: AP keys (negative = undefined -> NaN), mean oLRP components, per class."""
    result = {k: (math.nan if v < 0 else float(v)) for k, v in stats.items()}
    result.update(mean_components(list(lrps.values())))
    result["per_class"] = per_class_table(categories, per_class_ap, lrps)
    return result


def per_class_table(categories: list[dict], per_class_ap: dict, lrps: dict) -> dict:
    table = {}
    for cat in categories:
        lrp = lrps[cat["id"]]
        table[cat["name"]] = {
            "category_id": cat["id"],
            "AP": per_class_ap[cat["id"]],
            "num_gt": lrp.num_gt,
            "oLRP": lrp.olrp,
            "oLRP_Loc": lrp.loc,
            "oLRP_FP": lrp.fp,
            "oLRP_FN": lrp.fn,
            "threshold": lrp.threshold,
            "num_tp": lrp.num_tp,
            "num_fp": lrp.num_fp,
        }
    return table


def _non_ignored_gt_counts(coco_gt, cat_ids, img_ids=None) -> dict[int, int]:
    """Ground truth per category as COCOeval counts it: ``_prepare`` sets
    ``ignore = iscrowd`` (an annotation's own ``ignore`` field is overwritten), and the
    area range 'all' is [0, 1e10]."""
    counts = {c: 0 for c in cat_ids}
    images = set(img_ids) if img_ids is not None else None
    for ann in coco_gt.dataset.get("annotations", []):
        if images is not None and ann["image_id"] not in images:
            continue
        if not ann.get("iscrowd", 0) and 0 <= ann["area"] <= 1e10 and ann["category_id"] in counts:
            counts[ann["category_id"]] += 1
    return counts
