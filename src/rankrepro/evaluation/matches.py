"""Per-class matched detections, read from pycocotools' / lvis' own per-image evaluation.

Matching is not re-implemented: ``COCOeval.evaluate()`` and ``LVISEval.evaluate()`` already
match detections to ground truth greedily by score for every image, category and IoU
threshold (crowd and ignored ground truth, area ranges, LVIS's not-exhaustive categories
included).  This module reads their results at IoU threshold tau for the area range "all"
and adds the one thing they do not store: the IoU of each TP with its ground truth, taken
from the evaluator's own IoU matrices.

Each class's detections are listed in the evaluator's own order: images in the order of
its (sorted) image ids, within an image as its per-image evaluation sorted them (a stable
sort by score, so ties keep the order pycocotools / lvis loaded them in: the result
file's).  Ignored detections (on crowd / ignored ground truth, LVIS's not-exhaustive rule)
are left out, except for one fact the official oLRP needs: whether the class's top-ranked
detection is an ignored one (see :func:`rankrepro.evaluation.lrp.class_olrp`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ClassMatches:
    scores: np.ndarray
    is_tp: np.ndarray
    ious: np.ndarray
    num_gt: int
    # score of the class's first detection in the evaluator's stable ranking (highest score,
    # earliest image, earliest in its image) when that detection is ignored; None otherwise
    top_ignored_score: float | None = None


# The two evaluators store the same per-image results under different names.
_COCO_KEYS = dict(dt_ids="dtIds", gt_ids="gtIds", matches="dtMatches", scores="dtScores", gt_ignore="gtIgnore", dt_ignore="dtIgnore")
_LVIS_KEYS = dict(dt_ids="dt_ids", gt_ids="gt_ids", matches="dt_matches", scores="dt_scores", gt_ignore="gt_ignore", dt_ignore="dt_ignore")


def class_matches(evaluator, tau: float = 0.5) -> dict[int, ClassMatches]:
    """Matched detections per category id from an evaluated COCOeval or LVISEval."""
    is_lvis = hasattr(evaluator, "eval_imgs")
    keys = _LVIS_KEYS if is_lvis else _COCO_KEYS
    params = evaluator.params
    thresholds = np.asarray(params.iou_thrs if is_lvis else params.iouThrs)
    t = int(np.argmin(np.abs(thresholds - tau)))
    if abs(thresholds[t] - tau) > 1e-9:
        raise ValueError(f"IoU threshold {tau} is not among the evaluator's thresholds {thresholds.tolist()}")
    cat_ids = list(params.cat_ids if is_lvis else params.catIds)
    img_ids = list(params.img_ids if is_lvis else params.imgIds)
    area_ranges = params.area_rng if is_lvis else params.areaRng
    all_area = [list(map(float, a)) for a in area_ranges].index([0.0, 1e10])
    eval_imgs = evaluator.eval_imgs if is_lvis else evaluator.evalImgs
    gts = evaluator._gts
    num_imgs = len(img_ids)
    result = {}
    for k, cat_id in enumerate(cat_ids):
        start = (k * len(area_ranges) + all_area) * num_imgs
        scores, tps, ious, num_gt = [], [], [], 0
        top_score, top_ignored = -np.inf, False
        for e in eval_imgs[start : start + num_imgs]:
            if e is None:
                continue
            num_gt += int(np.count_nonzero(np.asarray(e[keys["gt_ignore"]]) == 0))
            num_dt = len(e[keys["dt_ids"]])
            if num_dt == 0:
                continue
            matched = np.asarray(e[keys["matches"]])[t]
            skip = np.asarray(e[keys["dt_ignore"]], dtype=bool)[t]
            tp = (matched > 0) & ~skip
            image_scores = np.asarray(e[keys["scores"]], dtype=np.float64)
            if image_scores[0] > top_score:  # each image's first is its top; ties: the earlier image
                top_score, top_ignored = float(image_scores[0]), bool(skip[0])
            iou = np.zeros(num_dt)
            if tp.any():
                # IoU rows follow the same score order as the detections; columns follow
                # the evaluator's ground-truth list of this image and category.
                matrix = np.asarray(evaluator.ious[e["image_id"], e["category_id"]])
                column = {g["id"]: j for j, g in enumerate(gts[e["image_id"], e["category_id"]])}
                rows = np.flatnonzero(tp)
                iou[rows] = matrix[rows, [column[int(g)] for g in matched[rows]]]
            keep = ~skip
            scores.append(image_scores[keep])
            tps.append(tp[keep])
            ious.append(iou[keep])
        result[cat_id] = ClassMatches(
            scores=np.concatenate(scores) if scores else np.zeros(0),
            is_tp=np.concatenate(tps) if tps else np.zeros(0, dtype=bool),
            ious=np.concatenate(ious) if ious else np.zeros(0),
            num_gt=num_gt,
            top_ignored_score=top_score if top_ignored else None,
        )
    return result
