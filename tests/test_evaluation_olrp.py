"""oLRP and its components on hand-computed cases; AP keys equal pycocotools' own.

Mode 'official' (the default) follows the LRP-Error evaluator (kemaloksuz/LRP-Error,
pycocotools/pycocotools/cocoeval.py, COCOeval.accumulate): the minimum of LRP over the
ranks of each class's detections, stably sorted by score, the first minimum.  Mode
'threshold' is the minimum over score thresholds (ties enter together).
"""
import contextlib
import io
import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.cocoeval import COCOeval

from evaluation_cases import box_gt, det
from rankrepro.evaluation import class_olrp, evaluate_coco
from rankrepro.evaluation.inputs import coco_from_dict


def test_one_tp_one_fp_one_fn():
    # 2 GT; a TP with IoU 0.8 at score 0.9, an FP at 0.8.  Keeping the TP only:
    # LRP = (0.2 / 0.5 + 0 + 1) / (1 + 0 + 1) = 0.7; keeping both: (0.4 + 1 + 1) / 3 = 0.8.
    gt = coco_from_dict(box_gt({1: [(1, [0, 0, 10, 10]), (1, [50, 50, 20, 20])]}))
    dets = [det(1, 1, [0, 0, 10, 8], 0.9), det(1, 1, [80, 0, 10, 10], 0.8)]
    m = evaluate_coco(gt, dets)
    c = m["per_class"]["cat"]
    assert c["oLRP"] == pytest.approx(0.7)
    assert c["oLRP_Loc"] == pytest.approx(0.2)
    assert c["oLRP_FP"] == 0.0
    assert c["oLRP_FN"] == 0.5
    assert c["threshold"] == 0.9
    assert (c["num_tp"], c["num_fp"], c["num_gt"]) == (1, 0, 2)
    # 'dog' has no ground truth: undefined, and left out of the means.
    assert math.isnan(m["per_class"]["dog"]["oLRP"])
    assert m["oLRP"] == pytest.approx(0.7) and m["oLRP_Loc"] == pytest.approx(0.2)
    assert m["oLRP_FP"] == 0.0 and m["oLRP_FN"] == 0.5


def test_class_without_detections_has_olrp_one():
    gt = coco_from_dict(box_gt({1: [(1, [0, 0, 10, 10]), (2, [20, 20, 10, 10])]}))
    m = evaluate_coco(gt, [det(1, 1, [0, 0, 10, 10], 0.9)])
    dog = m["per_class"]["dog"]
    assert dog["oLRP"] == 1.0 and dog["oLRP_FN"] == 1.0
    assert math.isnan(dog["oLRP_Loc"]) and math.isnan(dog["oLRP_FP"]) and math.isnan(dog["threshold"])
    assert m["per_class"]["cat"]["oLRP"] == 0.0
    assert m["oLRP"] == 0.5  # mean of 0 and 1
    assert m["oLRP_FN"] == 0.5 and m["oLRP_Loc"] == 0.0  # Loc only from 'cat'


def test_detections_only_on_class_without_gt_are_not_counted():
    gt = coco_from_dict(box_gt({1: [(1, [0, 0, 10, 10])]}))
    m = evaluate_coco(gt, [det(1, 1, [0, 0, 10, 10], 0.9), det(1, 2, [40, 40, 10, 10], 0.99)])
    assert m["oLRP"] == 0.0
    assert math.isnan(m["per_class"]["dog"]["oLRP"])


def test_crowd_ground_truth_is_ignored_like_coco():
    # A detection on a crowd region is neither TP nor FP; the crowd is no FN.
    gt = coco_from_dict(box_gt({1: [(1, [0, 0, 10, 10]), (1, [40, 40, 30, 30])]}, crowd=(1,)))
    dets = [det(1, 1, [0, 0, 10, 10], 0.5), det(1, 1, [45, 45, 10, 10], 0.9)]
    c = evaluate_coco(gt, dets)["per_class"]["cat"]
    assert c["num_gt"] == 1
    assert c["oLRP"] == 0.0 and c["num_fp"] == 0


# 1 GT; a TP with IoU 0.8 and an FP, both at score 0.5.
TIE_GT = box_gt({1: [(1, [0, 0, 10, 10])]})
TIE_TP = det(1, 1, [0, 0, 10, 8], 0.5)
TIE_FP = det(1, 1, [60, 60, 10, 10], 0.5)


def _cat(dets, **kw):
    return evaluate_coco(coco_from_dict(TIE_GT), [dict(d) for d in dets], **kw)["per_class"]["cat"]


def test_tie_tp_listed_first_counts_the_tp_alone_officially():
    # Ranks: TP, then FP.  Rank 1: LRP = (0.2 / 0.5 + 0 + 0) / 1 = 0.4; rank 2: 0.7.
    c = _cat([TIE_TP, TIE_FP])
    assert c["oLRP"] == pytest.approx(0.4) and c["oLRP_FP"] == 0.0 and c["oLRP_FN"] == 0.0
    assert c["oLRP_Loc"] == pytest.approx(0.2)  # mean 1 - IoU, not divided by 1 - tau
    assert (c["num_tp"], c["num_fp"], c["threshold"]) == (1, 0, 0.5)


def test_tie_fp_listed_first_gives_the_other_value_officially():
    # Ranks: FP (LRP (0 + 1 + 1) / 2 = 1), then TP: (0.4 + 1 + 0) / 2 = 0.7.
    c = _cat([TIE_FP, TIE_TP])
    assert c["oLRP"] == pytest.approx(0.7) and c["oLRP_FP"] == 0.5 and c["oLRP_FN"] == 0.0
    assert (c["num_tp"], c["num_fp"]) == (1, 1)


def test_tie_threshold_mode_keeps_tied_detections_together():
    # No threshold separates them: both kept, 0.7, whatever the order.
    for dets in ([TIE_TP, TIE_FP], [TIE_FP, TIE_TP]):
        c = _cat(dets, olrp_mode="threshold")
        assert c["oLRP"] == pytest.approx(0.7) and c["oLRP_FP"] == 0.5 and (c["num_tp"], c["num_fp"]) == (1, 1)


def test_tie_across_images_follows_image_order_not_file_order():
    # pycocotools pools the images in sorted id order: the TP of image 1 ranks before the
    # FP of image 2 although the file lists the FP first, and the other way round.
    gt = box_gt({1: [(1, [0, 0, 10, 10])], 2: []})
    c = evaluate_coco(coco_from_dict(gt), [det(2, 1, [60, 60, 10, 10], 0.5), det(1, 1, [0, 0, 10, 8], 0.5)])["per_class"]["cat"]
    assert c["oLRP"] == pytest.approx(0.4)
    gt = box_gt({1: [], 2: [(1, [0, 0, 10, 10])]})
    c = evaluate_coco(coco_from_dict(gt), [det(2, 1, [0, 0, 10, 8], 0.5), det(1, 1, [60, 60, 10, 10], 0.5)])["per_class"]["cat"]
    assert c["oLRP"] == pytest.approx(0.7)


def test_first_minimum_among_equal_ranks():
    # 2 GT; rank 1: a TP with IoU 1 -> LRP (0 + 0 + 1) / 2 = 0.5; rank 2: a TP with IoU
    # exactly 0.5 -> (1 + 0 + 0) / 2 = 0.5.  The first minimum keeps one detection.
    gt = coco_from_dict(box_gt({1: [(1, [0, 0, 10, 10]), (1, [50, 50, 10, 10])]}))
    for mode in ("official", "threshold"):
        c = evaluate_coco(gt, [det(1, 1, [0, 0, 10, 10], 0.9), det(1, 1, [50, 50, 10, 5], 0.8)], olrp_mode=mode)["per_class"]["cat"]
        assert c["oLRP"] == 0.5 and c["threshold"] == 0.9 and c["num_tp"] == 1, mode
        assert c["oLRP_Loc"] == 0.0 and c["oLRP_FN"] == 0.5


@pytest.mark.parametrize(
    "dets, expected",
    [
        # the only TP, at IoU exactly tau, first: components of rank 1
        ([det(1, 1, [0, 0, 10, 5], 0.9)], dict(loc=0.5, fp=0.0, fn=0.0, threshold=0.9)),
        # an FP first: rank 1 has no TP (Loc 0/0) and one FP
        ([det(1, 1, [0, 80, 10, 10], 0.95), det(1, 1, [0, 0, 10, 5], 0.9)], dict(loc=None, fp=1.0, fn=1.0, threshold=0.95)),
        # a detection on the crowd region first: neither TP nor FP (Loc and FP 0/0)
        ([det(1, 1, [45, 45, 10, 10], 0.95), det(1, 1, [0, 0, 10, 5], 0.9)], dict(loc=None, fp=None, fn=1.0, threshold=0.95)),
    ],
)
def test_every_rank_at_one_reports_the_first_rank_officially(dets, expected):
    """No rank below LRP 1 although there is a TP: the evaluator's argmin is rank 1 and it
    reports that rank's components (threshold mode: keeping none)."""
    gt = coco_from_dict(box_gt({1: [(1, [0, 0, 10, 10]), (1, [40, 40, 30, 30])]}, crowd=(1,)))
    c = evaluate_coco(gt, dets)["per_class"]["cat"]
    assert c["oLRP"] == 1.0 and c["oLRP_FN"] == expected["fn"] and c["threshold"] == expected["threshold"]
    for key, name in (("loc", "oLRP_Loc"), ("fp", "oLRP_FP")):
        assert math.isnan(c[name]) if expected[key] is None else c[name] == expected[key], name
    t = evaluate_coco(gt, dets, olrp_mode="threshold")["per_class"]["cat"]
    assert t["oLRP"] == 1.0 and t["oLRP_FN"] == 1.0 and math.isnan(t["oLRP_Loc"]) and math.isnan(t["threshold"])


def test_class_with_only_false_positives_is_one_and_left_out_of_loc_and_fp():
    # cat: one perfect TP; dog: ground truth but only an FP -> oLRP 1, FN 1, Loc/FP undefined,
    # so the headline Loc and FP are cat's alone while oLRP and FN average both classes.
    gt = coco_from_dict(box_gt({1: [(1, [0, 0, 10, 10]), (2, [50, 50, 10, 10])]}))
    m = evaluate_coco(gt, [det(1, 1, [0, 0, 10, 10], 0.9), det(1, 2, [0, 60, 10, 10], 0.9)])
    dog = m["per_class"]["dog"]
    assert dog["oLRP"] == 1.0 and dog["oLRP_FN"] == 1.0 and math.isnan(dog["oLRP_Loc"]) and math.isnan(dog["oLRP_FP"])
    assert m["oLRP"] == 0.5 and m["oLRP_FN"] == 0.5
    assert m["oLRP_Loc"] == 0.0 and m["oLRP_FP"] == 0.0


def test_mode_and_grid_are_validated():
    with pytest.raises(ValueError, match="unknown oLRP mode"):
        class_olrp(np.ones(1), np.ones(1, bool), np.ones(1), 1, mode="exact")
    with pytest.raises(ValueError, match="'threshold' only"):
        class_olrp(np.ones(1), np.ones(1, bool), np.ones(1), 1, score_grid=0.01)
    for bad in (0.0, -0.01, 1e-5, 1.5, float("nan")):
        with pytest.raises(ValueError, match="score grid step"):
            class_olrp(np.ones(1), np.ones(1, bool), np.ones(1), 1, score_grid=bad, mode="threshold")


def test_low_iou_match_is_fp_and_fn():
    gt = coco_from_dict(box_gt({1: [(1, [0, 0, 10, 10])]}))
    c = evaluate_coco(gt, [det(1, 1, [0, 0, 10, 4], 0.9)])["per_class"]["cat"]  # IoU 0.4 < 0.5
    assert c["oLRP"] == 1.0


def test_optimal_threshold_skips_low_quality_tail():
    # Scores 0.9 (IoU 1), 0.8 (IoU 0.6), 0.7 (FP), 3 GT:
    # k=1: (0 + 0 + 2) / 3 = 0.667; k=2: (0.8 + 0 + 1) / 3 = 0.6; k=3: (0.8 + 1 + 1) / 4 = 0.7
    lrp = class_olrp(np.array([0.7, 0.9, 0.8]), np.array([False, True, True]), np.array([0, 1.0, 0.6]), num_gt=3)
    assert lrp.olrp == pytest.approx(0.6)
    assert lrp.threshold == 0.8 and lrp.loc == pytest.approx(0.2) and lrp.fn == pytest.approx(1 / 3)


def test_score_grid_is_never_better_than_exact():
    rng = np.random.default_rng(0)
    scores = rng.random(200)
    is_tp = rng.random(200) < 0.5
    ious = rng.uniform(0.5, 1.0, 200)
    exact = class_olrp(scores, is_tp, ious, num_gt=120, mode="threshold")
    grid = class_olrp(scores, is_tp, ious, num_gt=120, score_grid=0.01, mode="threshold")
    assert grid.olrp >= exact.olrp
    assert grid.olrp - exact.olrp < 0.05


def test_empty_detections_have_defined_values():
    gt = coco_from_dict(box_gt({1: [(1, [0, 0, 10, 10])], 2: [(2, [0, 0, 5, 5])]}))
    m = evaluate_coco(gt, [])
    assert m["AP"] == 0.0 and m["oLRP"] == 1.0 and m["oLRP_FN"] == 1.0
    assert math.isnan(m["oLRP_Loc"]) and math.isnan(m["oLRP_FP"])


def _random_dataset(rng, num_images=30, num_cats=3):
    boxes = {}
    dets = []
    for image_id in range(1, num_images + 1):
        boxes[image_id] = []
        for _ in range(rng.integers(0, 5)):
            x, y = rng.uniform(0, 60, 2)
            w, h = rng.uniform(2, 40, 2) * (4 if rng.random() < 0.2 else 1)
            cat = int(rng.integers(1, num_cats + 1))
            boxes[image_id].append((cat, [float(x), float(y), float(w), float(h)]))
            if rng.random() < 0.8:
                jitter = rng.normal(0, 3, 4)
                box = [float(x + jitter[0]), float(y + jitter[1]), float(max(1, w + jitter[2])), float(max(1, h + jitter[3]))]
                dets.append(det(image_id, cat, box, float(rng.random())))
        for _ in range(rng.integers(0, 3)):
            box = [float(v) for v in rng.uniform(0, 60, 2)] + [float(v) for v in rng.uniform(2, 40, 2)]
            dets.append(det(image_id, int(rng.integers(1, num_cats + 1)), box, float(rng.random() * 0.7)))
    return box_gt(boxes, categories=[f"c{k}" for k in range(num_cats)]), dets


def test_ap_keys_equal_pycocotools_stats():
    rng = np.random.default_rng(1)
    gt_dict, dets = _random_dataset(rng)
    ours = evaluate_coco(coco_from_dict(gt_dict), dets)
    gt = coco_from_dict(gt_dict)
    ref = COCOeval(gt, gt.loadRes(dets), "bbox")
    with contextlib.redirect_stdout(io.StringIO()):
        ref.evaluate()
        ref.accumulate()
        ref.summarize()
    for key, value in zip(("AP", "AP50", "AP75", "APs", "APm", "APl"), ref.stats[:6]):
        if value < 0:  # pycocotools' "undefined" is NaN here
            assert math.isnan(ours[key]), key
        else:
            assert ours[key] == value, key
    assert not math.isnan(ours["APs"]) and not math.isnan(ours["APl"])
    assert 0 < ours["oLRP"] < 1


def _lrp_of_kept(gt_dict, kept) -> float:
    """LRP of exactly the detections ``kept``, matched by pycocotools itself."""
    gt = coco_from_dict(gt_dict)
    ev = COCOeval(gt, gt.loadRes([dict(d) for d in kept]), "bbox")
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
    tp = fp = 0
    loc = 0.0
    num_gt = 0
    for e in ev.evalImgs:
        if e is None or e["aRng"] != [0, 1e10]:
            continue
        num_gt += int((e["gtIgnore"] == 0).sum())
        ious = ev.ious[e["image_id"], e["category_id"]]
        gt_ids = [g["id"] for g in ev._gts[e["image_id"], e["category_id"]]]
        for d, match in enumerate(e["dtMatches"][0]):
            if e["dtIgnore"][0][d]:
                continue
            if match > 0:
                tp += 1
                loc += 1 - ious[d, gt_ids.index(match)]
            else:
                fp += 1
    return (loc / 0.5 + fp + num_gt - tp) / (num_gt + fp)


def test_threshold_mode_matches_a_brute_force_threshold_sweep():
    """Independent check: rebuild TP/FP per threshold with pycocotools at that threshold."""
    rng = np.random.default_rng(2)
    gt_dict, dets = _random_dataset(rng, num_images=12, num_cats=1)
    ours = evaluate_coco(coco_from_dict(gt_dict), [dict(d) for d in dets], olrp_mode="threshold")["per_class"]["c0"]
    best = min([1.0] + [_lrp_of_kept(gt_dict, [d for d in dets if d["score"] >= s]) for s in sorted({d["score"] for d in dets})])
    assert ours["oLRP"] == pytest.approx(best, abs=1e-12)


def test_official_mode_matches_a_brute_force_rank_sweep():
    """Independent check with many ties (scores in steps of 0.1): the pooled list is every
    detection by image id, then file order, stably sorted by score; LRP of each prefix is
    recomputed by pycocotools on that prefix alone (greedy matching of a detection depends
    only on those ranked before it in its image), and the first minimum is taken."""
    rng = np.random.default_rng(9)
    gt_dict, dets = _random_dataset(rng, num_images=10, num_cats=1)
    for d in dets:
        d["score"] = round(d["score"], 1)
    dets = [dets[i] for i in rng.permutation(len(dets))]  # file order unrelated to images
    pooled = sorted(sorted(range(len(dets)), key=lambda i: dets[i]["image_id"]), key=lambda i: -dets[i]["score"])
    lrps = [_lrp_of_kept(gt_dict, [dets[i] for i in pooled[: r + 1]]) for r in range(len(pooled))]
    first = int(np.argmin(lrps))
    ours = evaluate_coco(coco_from_dict(gt_dict), [dict(d) for d in dets])["per_class"]["c0"]
    assert ours["oLRP"] == pytest.approx(lrps[first], abs=1e-12)
    assert ours["threshold"] == dets[pooled[first]]["score"]
    threshold = evaluate_coco(coco_from_dict(gt_dict), [dict(d) for d in dets], olrp_mode="threshold")["per_class"]["c0"]
    assert threshold["oLRP"] > ours["oLRP"] + 0.005  # here splitting a tie finds a lower LRP


def test_segm_with_polygon_and_rle_ground_truth():
    square = [[10.0, 10.0, 50.0, 10.0, 50.0, 50.0, 10.0, 50.0]]
    mask = np.zeros((100, 100), dtype=np.uint8)
    mask[60:90, 60:90] = 1
    gt_rle = mask_utils.encode(np.asfortranarray(mask))
    gt_rle["counts"] = gt_rle["counts"].decode()
    gt_dict = box_gt({1: [(1, [10, 10, 40, 40]), (1, [60, 60, 30, 30])]})
    gt_dict["annotations"][0]["segmentation"] = square
    gt_dict["annotations"][1]["segmentation"] = gt_rle
    # detections: RLE of the square shrunk to 3/4 height, and the exact RLE region
    det_mask = np.zeros((100, 100), dtype=np.uint8)
    det_mask[10:40, 10:50] = 1
    rles = []
    for m in (det_mask, mask):
        rle = mask_utils.encode(np.asfortranarray(m))
        rle["counts"] = rle["counts"].decode()
        rles.append(rle)
    dets = [
        {"image_id": 1, "category_id": 1, "segmentation": rles[0], "score": 0.9},
        {"image_id": 1, "category_id": 1, "segmentation": rles[1], "score": 0.8},
    ]
    gt = coco_from_dict(gt_dict)
    m = evaluate_coco(gt, dets, iou_type="segm")
    poly_rle = mask_utils.frPyObjects(square, 100, 100)
    expected_iou = mask_utils.iou([rles[0]], poly_rle, [0])[0][0]
    c = m["per_class"]["cat"]
    assert c["num_tp"] == 2 and c["oLRP_FP"] == 0.0 and c["oLRP_FN"] == 0.0
    assert c["oLRP_Loc"] == pytest.approx((1 - expected_iou) / 2)
    assert m["AP50"] == pytest.approx(1.0)
