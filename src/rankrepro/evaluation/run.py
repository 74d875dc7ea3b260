"""Evaluate a ground-truth file and a detection file: the core of ``rankrepro evaluate``."""
from __future__ import annotations

from pathlib import Path

from .coco import evaluate_coco
from .inputs import DATASETS, IOU_TYPES, EvaluationInputError, check_detections, check_gt, coco_from_dict, load_json
from .lrp import TAU, check_olrp_options
from .lvis import evaluate_lvis
from .report import SCHEMA_VERSION


def evaluate_files(
    gt_path,
    dt_path,
    iou_type: str = "bbox",
    dataset: str = "coco",
    score_grid: float | None = None,
    olrp_mode: str = "official",
) -> dict:
    """Metrics of the detections in ``dt_path`` against ``gt_path`` (see ``evaluate_coco``)."""
    if dataset not in DATASETS:
        raise EvaluationInputError(f"unknown dataset {dataset!r}; choose from {DATASETS}")
    if iou_type not in IOU_TYPES:
        raise EvaluationInputError(f"unknown iou type {iou_type!r}; choose from {IOU_TYPES}")
    try:
        check_olrp_options(olrp_mode, score_grid)
    except ValueError as err:
        raise EvaluationInputError(str(err)) from None
    gt = load_json(gt_path, "ground-truth")
    check_gt(gt, gt_path, dataset, iou_type)
    raw = load_json(dt_path, "detections")
    image_ids = [img["id"] for img in gt["images"]]
    cat_ids = [cat["id"] for cat in gt["categories"]]
    sizes = {img["id"]: (img.get("height"), img.get("width")) for img in gt["images"]}
    detections = check_detections(raw, dt_path, image_ids, cat_ids, iou_type, sizes)
    if dataset == "coco":
        metrics = evaluate_coco(coco_from_dict(gt), detections, iou_type, score_grid, olrp_mode=olrp_mode)
    else:
        from lvis import LVIS

        metrics = evaluate_lvis(LVIS(str(gt_path)), detections, iou_type, score_grid, olrp_mode=olrp_mode)
    header = {
        "schema_version": SCHEMA_VERSION,
        "dataset": dataset,
        "iou_type": iou_type,
        "gt": str(Path(gt_path)),
        "detections": str(Path(dt_path)),
        "num_images": len(image_ids),
        "num_detections": len(detections),
        "olrp_tau": TAU,
        "olrp_mode": olrp_mode,
        "olrp_score_grid": score_grid,
    }
    return {**header, **metrics}
