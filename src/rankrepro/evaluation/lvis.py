"""LVIS AP (the lvis package: AP, AP50, AP75, APs/m/l, APr/c/f) and oLRP from one ``LVISEval``."""
from __future__ import annotations

import contextlib
import logging
import math

import numpy as np

from .coco import assemble, class_ap, class_lrps, without_detections
from .lrp import check_olrp_options

AP_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")
MAX_DETS = 300  # the official LVIS limit of detections per image


@contextlib.contextmanager
def _lvis_session():
    """Run lvis quietly and on current NumPy.

    lvis logs every step at INFO (and warns on in-memory results); lvis 0.5.3, the last
    release on PyPI, also calls ``np.float``, removed in NumPy 1.24 (it was an alias of
    ``float``): the alias is provided only while lvis runs.
    """
    logger = logging.getLogger("lvis")
    level = logger.level
    logger.setLevel(logging.ERROR)
    added = not hasattr(np, "float")
    if added:
        np.float = float
    try:
        yield
    finally:
        logger.setLevel(level)
        if added:
            del np.float


def evaluate_lvis(
    lvis_gt,
    detections: list[dict],
    iou_type: str = "bbox",
    score_grid: float | None = None,
    img_ids: list | None = None,
    olrp_mode: str = "official",
) -> dict:
    """LVIS AP keys and oLRP with components, matching done by ``LVISEval``.

    ``lvis_gt`` is an ``lvis.LVIS``; detections in the COCO results format (for segm,
    compressed RLE), already validated.  LVIS's federated rules apply to oLRP too:
    detections of categories neither verified present nor negative in an image are
    not evaluated, and unmatched ones in not-exhaustively-annotated categories are
    ignored.  Undefined values are NaN.  Without detections: AP 0, oLRP 1 per class.
    ``img_ids`` restricts the evaluation to these images (default: all); ``olrp_mode`` and
    ``score_grid`` as in :func:`rankrepro.evaluation.evaluate_coco`.
    """
    from lvis import LVISEval, LVISResults

    check_olrp_options(olrp_mode, score_grid)
    cat_ids = sorted(lvis_gt.get_cat_ids())
    if detections:
        with _lvis_session():
            results = LVISResults(lvis_gt, [dict(d) for d in detections], max_dets=MAX_DETS)
            evaluator = LVISEval(lvis_gt, results, iou_type)
            if img_ids is not None:
                evaluator.params.img_ids = list(img_ids)
            evaluator.run()
        stats = {k: v for k, v in evaluator.get_results().items() if k in AP_KEYS}
        per_class_ap = class_ap(evaluator.eval["precision"][:, :, :, 0], evaluator.params.cat_ids)  # area 'all'
        lrps = class_lrps(evaluator, score_grid, olrp_mode)
    else:
        num_gt = {c: 0 for c in cat_ids}
        images = set(img_ids) if img_ids is not None else None
        for ann in lvis_gt.dataset["annotations"]:
            # as LVISEval: get_ann_ids keeps 0 < area < inf, _prepare honours 'ignore'
            if (images is None or ann["image_id"] in images) and not ann.get("ignore", 0) and 0 < ann["area"] <= 1e10:
                num_gt[ann["category_id"]] += 1
        stats = {k: 0.0 if any(num_gt.values()) else math.nan for k in AP_KEYS}
        per_class_ap, lrps = without_detections(num_gt)
    return assemble(stats, lrps, lvis_gt.load_cats(cat_ids), per_class_ap)
