"""rankrepro evaluate: the metrics JSON, LVIS, and clear errors for bad files."""
import json

import pytest

from evaluation_cases import box_gt, det, write
from rankrepro.cli import main
from rankrepro.evaluation import EvaluationInputError, evaluate_files

REQUIRED = ("AP", "AP50", "AP75", "APs", "APm", "APl", "oLRP", "oLRP_Loc", "oLRP_FP", "oLRP_FN")


@pytest.fixture
def files(tmp_path):
    gt = box_gt({1: [(1, [0, 0, 10, 10]), (1, [50, 50, 20, 20])], 2: [(2, [10, 10, 30, 30])]})
    dets = [det(1, 1, [0, 0, 10, 8], 0.9), det(1, 1, [80, 0, 10, 10], 0.8), det(2, 2, [10, 10, 30, 30], 0.7)]
    return write(tmp_path, "gt.json", gt), write(tmp_path, "dets.json", dets)


def test_cli_writes_metrics_json(files, tmp_path, capsys):
    gt, dets = files
    out = tmp_path / "out" / "metrics.json"
    assert main(["evaluate", "--gt", str(gt), "--dt", str(dets), "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    for key in REQUIRED:
        assert metrics[key] is None or 0.0 <= metrics[key] <= 1.0, key
    # cat: oLRP 0.7 (see test_evaluation_olrp); dog: one perfect detection, oLRP 0.
    assert metrics["oLRP"] == pytest.approx(0.35)
    assert metrics["per_class"]["cat"]["threshold"] == 0.9
    assert metrics["per_class"]["dog"]["oLRP"] == 0.0
    assert metrics["dataset"] == "coco" and metrics["iou_type"] == "bbox" and metrics["num_detections"] == 3
    assert "oLRP=0.3500" in capsys.readouterr().out
    assert not list(out.parent.glob(".*tmp"))  # no temporary left behind


def test_null_for_undefined_values(files, tmp_path):
    gt, dets = files
    out = tmp_path / "m.json"
    main(["evaluate", "--gt", str(gt), "--dt", str(dets), "--out", str(out)])
    metrics = json.loads(out.read_text())
    assert metrics["APl"] is None  # no large objects: pycocotools says -1


def test_empty_detections(files, tmp_path):
    gt, _ = files
    empty = write(tmp_path, "empty.json", [])
    metrics = evaluate_files(gt, empty)
    assert metrics["AP"] == 0.0 and metrics["oLRP"] == 1.0 and metrics["oLRP_FN"] == 1.0


def _error(gt, dets, **kw):
    with pytest.raises(EvaluationInputError) as err:
        evaluate_files(gt, dets, **kw)
    return str(err.value)


def test_missing_and_corrupt_files(files, tmp_path):
    gt, dets = files
    assert "does not exist" in _error(tmp_path / "nope.json", dets)
    assert "nope.json" in _error(tmp_path / "nope.json", dets)
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"images": [')
    assert f"{corrupt}: ground-truth file is not valid JSON" in _error(corrupt, dets)
    assert "detections file is not valid JSON" in _error(gt, corrupt)
    empty_file = tmp_path / "empty_file.json"
    empty_file.write_text("")
    assert "not valid JSON" in _error(gt, empty_file)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}, "no images"),
        ({"annotations": [], "categories": []}, "no 'images' list"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_ground_truth(files, tmp_path, bad, message):
    _, dets = files
    assert message in _error(write(tmp_path, "bad_gt.json", bad), dets)


def test_ground_truth_with_id_zero_is_rejected(files, tmp_path):
    """pycocotools reads a match with gt id 0 as 'unmatched': reject instead of miscounting."""
    _, dets = files
    gt = box_gt({1: [(1, [0, 0, 10, 10])]})
    gt["annotations"][0]["id"] = 0
    assert "annotation ids must be positive integers, got 0" in _error(write(tmp_path, "g.json", gt), dets)


@pytest.mark.parametrize("key", ["iscrowd", "area"])
def test_ground_truth_without_area_or_iscrowd(files, tmp_path, key):
    _, dets = files
    gt = box_gt({1: [(1, [0, 0, 10, 10])]})
    del gt["annotations"][0][key]
    assert "annotations need ['area', 'iscrowd']: ids 1" in _error(write(tmp_path, "g.json", gt), dets)


def test_ground_truth_with_negative_box(files, tmp_path):
    _, dets = files
    gt = box_gt({1: [(1, [0, 0, -5, 10])]})
    assert "negative-size bbox: ids 1" in _error(write(tmp_path, "g.json", gt), dets)


@pytest.mark.parametrize(
    "bad_det, message",
    [
        (det(7, 1, [0, 0, 5, 5], 0.5), "image ids not in the ground truth: 7"),
        (det(1, 9, [0, 0, 5, 5], 0.5), "category ids not in the ground truth: 9"),
        (det(1, 1, [0, 0, -1, 5], 0.5), "negative-size bbox at positions 3"),
        (det(1, 1, [0, 0, float("nan"), 5], 0.5), "non-finite or negative-size bbox"),
        (det(1, 1, [0, 0, 5, 5], float("nan")), "NaN, infinite or non-numeric score"),
        ({"image_id": 1, "bbox": [0, 0, 1, 1]}, "without image_id/category_id/score"),
    ],
)
def test_bad_detections(files, tmp_path, bad_det, message):
    gt, dets = files
    data = json.loads(dets.read_text()) + [bad_det]
    path = write(tmp_path, "bad_dets.json", data)
    text = _error(gt, path)
    assert message in text and str(path) in text


def test_detections_not_a_list(files, tmp_path):
    gt, _ = files
    assert "must be a JSON list" in _error(gt, write(tmp_path, "d.json", {"a": 1}))


def test_segm_detections_need_segmentation(files, tmp_path):
    _, dets = files
    gt = box_gt({1: [(1, [0, 0, 10, 10]), (1, [50, 50, 20, 20])], 2: [(2, [10, 10, 30, 30])]})
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        ann["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    text = _error(write(tmp_path, "segm_gt.json", gt), dets, iou_type="segm")
    assert "segm detections with no 'segmentation' (an RLE or polygons): positions 0, 1, 2" in text


def test_cli_reports_errors_without_traceback(files, tmp_path, capsys):
    gt, _ = files
    code = main(["evaluate", "--gt", str(gt), "--dt", str(tmp_path / "missing.json"), "--out", str(tmp_path / "m.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert "missing.json: detections file does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "m.json").exists()


def _lvis_gt():
    gt = box_gt(
        {1: [(1, [0, 0, 10, 10]), (2, [40, 40, 20, 20])], 2: [(3, [0, 0, 30, 30])]},
        categories=("rare_thing", "common_thing", "frequent_thing"),
    )
    for cat, freq in zip(gt["categories"], "rcf"):
        cat["frequency"] = freq
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        ann["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
        del ann["iscrowd"]
    # image 1: category 3 verified absent; image 2: category 1 verified absent,
    # category 2 neither -> detections of category 2 on image 2 are not evaluated.
    gt["images"][0].update(neg_category_ids=[3], not_exhaustive_category_ids=[])
    gt["images"][1].update(neg_category_ids=[1], not_exhaustive_category_ids=[])
    return gt


def test_lvis_keys_and_federated_rule(tmp_path):
    gt = write(tmp_path, "lvis.json", _lvis_gt())
    dets = [
        det(1, 1, [0, 0, 10, 10], 0.9),  # rare: TP
        det(1, 2, [40, 40, 20, 20], 0.8),  # common: TP
        det(2, 3, [0, 0, 30, 30], 0.7),  # frequent: TP
        det(2, 2, [50, 50, 10, 10], 0.99),  # category 2 unverified on image 2: not evaluated
    ]
    out = tmp_path / "lvis_metrics.json"
    assert main(["evaluate", "--gt", str(gt), "--dt", str(write(tmp_path, "d.json", dets)), "--dataset", "lvis", "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    for key in ("AP", "APr", "APc", "APf"):
        assert metrics[key] == pytest.approx(1.0), key
    assert metrics["oLRP"] == 0.0 and metrics["per_class"]["common_thing"]["num_fp"] == 0


def test_lvis_false_positive_on_verified_negative(tmp_path):
    gt = write(tmp_path, "lvis.json", _lvis_gt())
    dets = [det(1, 1, [0, 0, 10, 10], 0.9), det(2, 1, [0, 0, 10, 10], 0.95)]  # category 1 verified absent on image 2
    metrics = evaluate_files(gt, write(tmp_path, "d.json", dets), dataset="lvis")
    rare = metrics["per_class"]["rare_thing"]
    # keeping both: (0 + 1 + 0) / (1 + 1) = 0.5 is the only threshold that finds the TP
    assert rare["oLRP"] == 0.5 and rare["num_fp"] == 1
    assert rare["AP"] == pytest.approx(0.5)  # the FP outranks the only TP: precision 1/2 at recall 1


def test_lvis_ground_truth_needs_federated_fields(tmp_path, files):
    _, dets = files
    gt = box_gt({1: [(1, [0, 0, 10, 10])]})
    assert "neg_category_ids" in _error(write(tmp_path, "l.json", gt), dets, dataset="lvis")
