"""The mmengine metrics report mmdet's AP keys plus oLRP, equal to ``evaluate_coco``."""
import json

import numpy as np
import pytest
import torch

from evaluation_cases import box_gt, det, write

pytest.importorskip("mmdet")
from rankrepro.evaluation import evaluate_coco  # noqa: E402
from rankrepro.evaluation.inputs import coco_from_dict  # noqa: E402
from rankrepro.evaluation.metrics import CocoOLRPMetric, LVISOLRPMetric  # noqa: E402

GT = box_gt({1: [(1, [0, 0, 10, 10]), (1, [50, 50, 20, 20])], 2: [(2, [10, 10, 30, 30])]})
# (image, category, xywh, score)
DETS = [(1, 1, [0, 0, 10, 8], 0.9), (1, 1, [80, 0, 10, 10], 0.8), (2, 2, [10, 10, 30, 30], 0.7), (2, 1, [60, 60, 5, 5], 0.3)]


def _samples(with_masks=False):
    samples = []
    for image_id in (1, 2):
        rows = [d for d in DETS if d[0] == image_id]
        boxes = torch.tensor([[x, y, x + w, y + h] for _, _, (x, y, w, h), _ in rows], dtype=torch.float32)
        pred = {
            "bboxes": boxes,
            "scores": torch.tensor([r[3] for r in rows]),
            "labels": torch.tensor([r[1] - 1 for r in rows]),
        }
        if with_masks:
            masks = torch.zeros(len(rows), 100, 100, dtype=torch.bool)
            for k, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
                masks[k, y1:y2, x1:x2] = True
            pred["masks"] = masks
        samples.append({"img_id": image_id, "ori_shape": (100, 100), "pred_instances": pred})
    return samples


def _run(metric, samples):
    metric.dataset_meta = {"classes": ("cat", "dog")}
    metric.process({}, samples)
    return metric.evaluate(size=len(samples))


def test_coco_metric_keys_and_values(tmp_path):
    ann = write(tmp_path, "gt.json", GT)
    prefix = tmp_path / "out" / "val"
    prefix.parent.mkdir()
    results = _run(CocoOLRPMetric(ann_file=str(ann), metric="bbox", classwise=True, outfile_prefix=str(prefix)), _samples())
    expected = evaluate_coco(coco_from_dict(GT), [det(*d) for d in DETS])
    for ours, theirs in [("mAP", "AP"), ("mAP_50", "AP50"), ("oLRP", "oLRP"), ("oLRP_Loc", "oLRP_Loc"), ("oLRP_FP", "oLRP_FP"), ("oLRP_FN", "oLRP_FN")]:
        assert results[f"coco/bbox_{ours}"] == pytest.approx(expected[theirs], abs=1e-6), ours
    # cat: TP (IoU 0.8) at 0.9, FP at 0.8, FP at 0.3; 2 GT -> oLRP 0.7; dog: perfect.
    assert results["coco/bbox_cat_oLRP"] == pytest.approx(0.7)
    assert results["coco/bbox_dog_oLRP"] == pytest.approx(0.0)
    saved = json.loads((tmp_path / "out" / "val.bbox.metrics.json").read_text())
    assert saved["oLRP"] == pytest.approx(0.35) and saved["dataset"] == "coco"


def test_coco_metric_segm(tmp_path):
    gt = json.loads(json.dumps(GT))
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        ann["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    ann_file = write(tmp_path, "gt.json", gt)
    results = _run(CocoOLRPMetric(ann_file=str(ann_file), metric=["bbox", "segm"]), _samples(with_masks=True))
    assert results["coco/segm_oLRP_FN"] == pytest.approx(0.25)  # cat misses 1 of 2, dog none
    assert 0.0 < results["coco/segm_mAP"] <= 1.0 and 0.0 < results["coco/segm_oLRP"] < 1.0


def test_proposal_metric_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="'bbox' and 'segm'"):
        CocoOLRPMetric(ann_file=str(write(tmp_path, "gt.json", GT)), metric="proposal")


def test_lvis_metric(tmp_path):
    gt = json.loads(json.dumps(GT))
    for cat, freq in zip(gt["categories"], "rf"):
        cat["frequency"] = freq
    for image in gt["images"]:
        image.update(neg_category_ids=[], not_exhaustive_category_ids=[])
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        ann["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    ann_file = write(tmp_path, "lvis.json", gt)
    results = _run(LVISOLRPMetric(ann_file=str(ann_file), metric="bbox"), _samples())
    assert results["lvis/bbox_APf"] == pytest.approx(1.0)  # 'dog' (frequent): one perfect detection
    assert results["lvis/bbox_oLRP"] == pytest.approx(0.35)
    assert np.isnan(results["lvis/bbox_APc"])  # no common category


def _tie_samples():
    # one image: a TP (IoU 0.8 with the only GT) and an FP with the same score, TP first
    boxes = torch.tensor([[0, 0, 10, 8], [60, 60, 70, 70]], dtype=torch.float32)
    pred = {"bboxes": boxes, "scores": torch.tensor([0.5, 0.5]), "labels": torch.tensor([0, 0])}
    return [{"img_id": 1, "ori_shape": (100, 100), "pred_instances": pred}]


@pytest.mark.parametrize("metric_type", [CocoOLRPMetric, LVISOLRPMetric])
def test_metrics_default_to_the_official_olrp(tmp_path, metric_type):
    """The LRP-Error evaluator's rank minimum by default (TP of a tie first: 0.4), the
    threshold minimum on request (the tie enters together: 0.7)."""
    gt = box_gt({1: [(1, [0, 0, 10, 10])]})
    prefix = "coco"
    if metric_type is LVISOLRPMetric:
        prefix = "lvis"
        for cat, freq in zip(gt["categories"], "rf"):
            cat["frequency"] = freq
        gt["images"][0].update(neg_category_ids=[], not_exhaustive_category_ids=[])
        for ann in gt["annotations"]:
            x, y, w, h = ann["bbox"]
            ann["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    ann_file = str(write(tmp_path, "gt.json", gt))
    official = _run(metric_type(ann_file=ann_file, metric="bbox"), _tie_samples())
    assert official[f"{prefix}/bbox_oLRP"] == pytest.approx(0.4) and official[f"{prefix}/bbox_oLRP_FP"] == 0.0
    threshold = _run(metric_type(ann_file=ann_file, metric="bbox", olrp_mode="threshold"), _tie_samples())
    assert threshold[f"{prefix}/bbox_oLRP"] == pytest.approx(0.7) and threshold[f"{prefix}/bbox_oLRP_FP"] == 0.5
    with pytest.raises(ValueError, match="'threshold' only"):
        metric_type(ann_file=ann_file, metric="bbox", score_grid=0.01)
