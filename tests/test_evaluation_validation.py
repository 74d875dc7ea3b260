"""rankrepro evaluate: every malformed field that pycocotools / lvis would misread is an error
that names the file (exit 2, no traceback), checked before anything is evaluated; --out
never replaces an input or a read-only file; --olrp-mode / --score-grid are validated."""
import copy
import json
import math
import os

import numpy as np
import pytest
from pycocotools import mask as mask_utils

import rankrepro.evaluation
from evaluation_cases import box_gt, det, write
from rankrepro.cli import main
from rankrepro.evaluation import evaluate_files
from rankrepro.evaluation.inputs import compressed_rle_pixels

BOXES = {1: [(1, [0, 0, 10, 10]), (1, [50, 50, 20, 20])], 2: [(2, [10, 10, 30, 30])]}


def _polygon(box):
    x, y, w, h = box
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def _rle(box, height=100, width=100, compressed=True):
    x, y, w, h = box
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[y : y + h, x : x + w] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    rle["counts"] = rle["counts"].decode()
    if not compressed:  # the uncompressed form: run lengths, column-major, starting with 0s
        flat = mask.flatten(order="F")
        change = np.flatnonzero(np.diff(flat)) + 1
        bounds = np.r_[0, change, flat.size]
        runs = np.diff(bounds).tolist()
        rle["counts"] = ([0] + runs) if flat[0] else runs
    return rle


def coco_gt(segm=False):
    gt = box_gt(BOXES)
    if segm:
        for ann in gt["annotations"]:
            ann["segmentation"] = _polygon(ann["bbox"])
    return gt


def coco_dets(segm=False):
    rows = [(1, 1, [0, 0, 10, 8], 0.9), (1, 1, [80, 0, 10, 10], 0.8), (2, 2, [10, 10, 30, 30], 0.7)]
    if not segm:
        return [det(*r) for r in rows]
    return [{"image_id": i, "category_id": c, "segmentation": _rle(b), "score": s} for i, c, b, s in rows]


def lvis_gt(segm=False):
    gt = coco_gt(segm=True)  # LVIS annotations always carry polygons
    for cat, freq in zip(gt["categories"], "rf"):
        cat["frequency"] = freq
    for ann in gt["annotations"]:
        del ann["iscrowd"]
    gt["images"][0].update(neg_category_ids=[2], not_exhaustive_category_ids=[])
    gt["images"][1].update(neg_category_ids=[1], not_exhaustive_category_ids=[])
    return gt


def _run_cli(tmp_path, gt, dets, *options):
    out = tmp_path / "metrics.json"
    argv = ["evaluate", "--gt", str(write(tmp_path, "gt.json", gt)), "--dt", str(write(tmp_path, "dt.json", dets)), "--out", str(out), *options]
    return main(argv), out


def _assert_clean_error(tmp_path, capsys, gt, dets, message, *options, bad_file="gt.json"):
    code, out = _run_cli(tmp_path, gt, dets, *options)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and not out.exists()
    assert err.startswith(f"rankrepro evaluate: error: {tmp_path / bad_file}: "), err
    assert message in err, err


def _set(path, value):
    """A mutation: set data[k1][k2]... = value (a missing last key deletes)."""

    def mutate(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return mutate


_DELETE = object()


def _append(path, value):
    def mutate(data):
        target = data
        for key in path:
            target = target[key]
        target.append(copy.deepcopy(value))

    return mutate


# (name, mutation of the ground truth, expected message); bbox evaluation, COCO
GT_BBOX_CASES = [
    ("image id not an integer", _set(["images", 0, "id"], "1"), "every image needs an integer 'id': positions 0"),
    ("duplicate image id", _append(["images"], {"id": 1, "width": 50, "height": 50}), "duplicate image ids: 1"),
    ("category id not an integer", _set(["categories", 1, "id"], [2]), "every category needs an integer 'id': positions 1"),
    ("duplicate category id", _set(["categories", 1, "id"], 1), "duplicate category ids: 1"),
    ("category without a name", _set(["categories", 1, "name"], _DELETE), "every category needs a non-empty 'name': ids 2"),
    ("duplicate category name", _set(["categories", 1, "name"], "cat"), "duplicate category names (per-class results are keyed by name): cat"),
    ("annotation not an object", _append(["annotations"], 7), "annotations without id/image_id/category_id at positions 3"),
    ("duplicate annotation id", _set(["annotations", 1, "id"], 1), "duplicate annotation ids: 1"),
    ("unhashable category id", _set(["annotations", 0, "category_id"], [1]), "annotations refer to category ids not in 'categories': [1]"),
    ("image id of another type", _set(["annotations", 2, "image_id"], "2"), "annotations refer to image ids not in 'images': 2"),
    ("NaN area", _set(["annotations", 0, "area"], float("nan")), "annotations need a finite 'area' >= 0: ids 1"),
    ("negative area", _set(["annotations", 1, "area"], -1), "annotations need a finite 'area' >= 0: ids 2"),
    ("area as text", _set(["annotations", 1, "area"], "400"), "annotations need a finite 'area' >= 0: ids 2"),
    ("iscrowd as text", _set(["annotations", 0, "iscrowd"], "0"), "annotations need 'iscrowd' 0 or 1: ids 1"),
    ("iscrowd 2", _set(["annotations", 0, "iscrowd"], 2), "annotations need 'iscrowd' 0 or 1: ids 1"),
    ("bbox of 3 numbers", _set(["annotations", 2, "bbox"], [10, 10, 30]), "annotations with a missing, non-finite or negative-size bbox: ids 3"),
    ("bbox with text", _set(["annotations", 2, "bbox"], [10, 10, "30", 30]), "annotations with a missing, non-finite or negative-size bbox: ids 3"),
]


@pytest.mark.parametrize("name, mutate, message", GT_BBOX_CASES, ids=[c[0] for c in GT_BBOX_CASES])
def test_malformed_bbox_ground_truth(tmp_path, capsys, name, mutate, message):
    gt = coco_gt()
    mutate(gt)
    _assert_clean_error(tmp_path, capsys, gt, coco_dets(), message)


# segm evaluation, COCO: the image size and the masks
GT_SEGM_CASES = [
    ("image without height", _set(["images", 0, "height"], _DELETE), "positive integer 'height' and 'width' for every image: ids 1"),
    ("image of width 0", _set(["images", 1, "width"], 0), "positive integer 'height' and 'width' for every image: ids 2"),
    ("no segmentation", _set(["annotations", 0, "segmentation"], _DELETE), "annotations with no 'segmentation' (an RLE or polygons): ids 1"),
    ("segmentation of another type", _set(["annotations", 0, "segmentation"], "mask"), "annotations with no 'segmentation'"),
    ("empty polygon list", _set(["annotations", 0, "segmentation"], []), "annotations with polygons that are not"),
    # pycocotools' frPyObjects would read these 4 numbers as a box [x, y, w, h]
    ("polygon of 4 numbers", _set(["annotations", 0, "segmentation"], [[0, 0, 10, 10]]), "annotations with polygons that are not non-empty lists of at least 6 finite coordinates, an even number, ids 1"),
    ("polygon of odd length", _set(["annotations", 0, "segmentation"], [[0, 0, 10, 0, 10, 10, 0]]), "annotations with polygons that are not"),
    ("polygon with NaN", _set(["annotations", 1, "segmentation"], [[50, 50, 70, float("nan"), 70, 70]]), "annotations with polygons that are not"),
    ("RLE of another size", _set(["annotations", 0, "segmentation"], _rle([0, 0, 10, 10], 50, 100)), "annotations with an RLE 'size' that is not the image's [height, width]: ids 1"),
    ("RLE counts not a list or string", _set(["annotations", 0, "segmentation"], {"size": [100, 100], "counts": 5}), "annotations with RLE 'counts' that are not a string or a list of non-negative integers: ids 1"),
    ("RLE with negative counts", _set(["annotations", 0, "segmentation"], {"size": [100, 100], "counts": [-5, 10005]}), "annotations with RLE 'counts' that are not"),
    ("uncompressed RLE short of the image", _set(["annotations", 0, "segmentation"], {"size": [100, 100], "counts": [0, 100]}), "annotations with RLE counts that do not cover height x width pixels: ids 1"),
    ("compressed RLE with garbage", _set(["annotations", 0, "segmentation"], {"size": [100, 100], "counts": "~~~~"}), "annotations with RLE counts that do not cover height x width pixels: ids 1"),
]


@pytest.mark.parametrize("name, mutate, message", GT_SEGM_CASES, ids=[c[0] for c in GT_SEGM_CASES])
def test_malformed_segm_ground_truth(tmp_path, capsys, name, mutate, message):
    gt = coco_gt(segm=True)
    mutate(gt)
    _assert_clean_error(tmp_path, capsys, gt, coco_dets(segm=True), message, "--iou-type", "segm")


LVIS_CASES = [
    ("neg_category_ids not a list", _set(["images", 0, "neg_category_ids"], 2), "LVIS images whose neg_category_ids is not a list of known category ids: ids 1"),
    ("unknown not-exhaustive category", _set(["images", 1, "not_exhaustive_category_ids"], [9]), "not_exhaustive_category_ids is not a list of known category ids: ids 2"),
    ("negative category with objects", _set(["images", 0, "neg_category_ids"], [1]), "LVIS images with annotations of a category in their neg_category_ids: ids 1"),
    ("frequency other than r/c/f", _set(["categories", 0, "frequency"], "rare"), "LVIS categories need a frequency of 'r', 'c' or 'f': ids 1"),
    # lvis keeps only 0 < area < inf: this object would silently not exist
    ("area 0", _set(["annotations", 0, "area"], 0), "LVIS annotations need a finite 'area' > 0: ids 1"),
    ("ignore as text", _set(["annotations", 0, "ignore"], "0"), "annotations with 'ignore' other than 0 or 1: ids 1"),
]


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("name, mutate, message", LVIS_CASES, ids=[c[0] for c in LVIS_CASES])
def test_malformed_lvis_ground_truth(tmp_path, capsys, name, mutate, message, iou_type):
    gt = lvis_gt()
    mutate(gt)
    dets = coco_dets(segm=iou_type == "segm")
    _assert_clean_error(tmp_path, capsys, gt, dets, message, "--dataset", "lvis", "--iou-type", iou_type)


def test_malformed_lvis_segm_mask(tmp_path, capsys):
    gt = lvis_gt()
    gt["annotations"][2]["segmentation"] = [[10, 10, 40, 10]]
    _assert_clean_error(tmp_path, capsys, gt, coco_dets(segm=True), "annotations with polygons that are not", "--dataset", "lvis", "--iou-type", "segm")


DET_BBOX_CASES = [
    ("unhashable image id", _set([0, "image_id"], [1]), "detections on image ids not in the ground truth: [1]"),
    ("category id as text", _set([1, "category_id"], "1"), "detections with category ids not in the ground truth: 1"),
    ("score as text", _set([1, "score"], "0.8"), "detections with a NaN, infinite or non-numeric score at positions 1"),
    ("bbox with NaN", _set([2, "bbox"], [10, 10, float("nan"), 30]), "detections with a missing, non-finite or negative-size bbox at positions 2"),
    ("bbox of 5 numbers", _set([2, "bbox"], [10, 10, 30, 30, 1]), "detections with a missing, non-finite or negative-size bbox at positions 2"),
]


@pytest.mark.parametrize("name, mutate, message", DET_BBOX_CASES, ids=[c[0] for c in DET_BBOX_CASES])
def test_malformed_bbox_detections(tmp_path, capsys, name, mutate, message):
    dets = coco_dets()
    mutate(dets)
    _assert_clean_error(tmp_path, capsys, coco_gt(), dets, message, bad_file="dt.json")


DET_SEGM_CASES = [
    ("no segmentation", _set([1, "segmentation"], _DELETE), "segm detections with no 'segmentation' (an RLE or polygons): positions 1"),
    ("RLE of another size", _set([0, "segmentation"], _rle([0, 0, 10, 8], 100, 120)), "segm detections with an RLE 'size' that is not the image's [height, width]: positions 0"),
    ("RLE size as text", _set([0, "segmentation", "size"], ["100", "100"]), "segm detections with an RLE 'size' that is not"),
    ("RLE counts a number", _set([0, "segmentation", "counts"], 17), "segm detections with RLE 'counts' that are not a string or a list"),
    ("compressed RLE cut short", lambda d: d[0]["segmentation"].update(counts=d[0]["segmentation"]["counts"][:-1]), "segm detections with RLE counts that do not cover height x width pixels: positions 0"),
    ("compressed RLE with a character out of range", lambda d: d[2]["segmentation"].update(counts="\x7f" + d[2]["segmentation"]["counts"]), "segm detections with RLE counts that do not cover height x width pixels: positions 2"),
    ("polygon of 4 numbers", _set([1, "segmentation"], [[80, 0, 90, 10]]), "segm detections with polygons that are not"),
]


@pytest.mark.parametrize("name, mutate, message", DET_SEGM_CASES, ids=[c[0] for c in DET_SEGM_CASES])
def test_malformed_segm_detections(tmp_path, capsys, name, mutate, message):
    dets = coco_dets(segm=True)
    mutate(dets)
    _assert_clean_error(tmp_path, capsys, coco_gt(segm=True), dets, message, "--iou-type", "segm", bad_file="dt.json")


def test_unreadable_or_too_deeply_nested_files(tmp_path, capsys, monkeypatch):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    gt = write(tmp_path, "gt.json", coco_gt())
    code = main(["evaluate", "--gt", str(gt), "--dt", str(deep), "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert code == 2 and f"{deep}: detections file is not valid JSON (nested too deeply)" in err

    def unreadable(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("rankrepro.evaluation.inputs.open", unreadable, raising=False)
    code = main(["evaluate", "--gt", str(gt), "--dt", str(deep), "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert code == 2 and f"{gt}: cannot read the ground-truth file (Permission denied)" in err


# --- inputs pycocotools would read in a way of its own; now read as the format means -------


def _metrics(tmp_path, gt, dets, **kw):
    return evaluate_files(write(tmp_path, "g.json", gt), write(tmp_path, "d.json", dets), **kw)


def test_segm_detections_as_polygons_or_uncompressed_rle_equal_compressed_rle(tmp_path):
    """loadRes takes only compressed RLE (a polygon or a list of counts fails in its area());
    both are compressed at the image's size first."""
    gt = coco_gt(segm=True)
    reference = _metrics(tmp_path, gt, coco_dets(segm=True), iou_type="segm")
    boxes = [[0, 0, 10, 8], [80, 0, 10, 10], [10, 10, 30, 30]]
    polygons = coco_dets(segm=True)
    uncompressed = coco_dets(segm=True)
    for d, u, box in zip(polygons, uncompressed, boxes):
        d["segmentation"] = _polygon(box)
        u["segmentation"] = _rle(box, compressed=False)
    for dets in (polygons, uncompressed):
        metrics = _metrics(tmp_path, gt, dets, iou_type="segm")
        for key in ("AP", "AP50", "oLRP", "oLRP_Loc"):
            assert metrics[key] == pytest.approx(reference[key]), key


def test_segm_detection_area_comes_from_the_mask_not_a_bbox(tmp_path):
    """A 'bbox' on the first segm detection made loadRes read every detection as a box (area
    w x h; a KeyError for a detection without one); the mask gives the area, as mmdet and
    detectron2 do it."""
    gt = coco_gt(segm=True)
    reference = _metrics(tmp_path, gt, coco_dets(segm=True), iou_type="segm")
    dets = coco_dets(segm=True)
    dets[0]["bbox"] = [0, 0, 90, 90]  # a large box around a small mask
    metrics = _metrics(tmp_path, gt, dets, iou_type="segm")
    assert metrics["APs"] == reference["APs"] and metrics["AP"] == reference["AP"]


def test_extra_keys_on_the_first_detection_do_not_change_its_reading(tmp_path):
    # pycocotools' loadRes tests the first result for 'caption' before 'bbox'
    reference = _metrics(tmp_path, coco_gt(), coco_dets())
    dets = coco_dets()
    dets[0]["caption"] = "a cat"
    assert _metrics(tmp_path, coco_gt(), dets)["AP"] == reference["AP"]


def test_segm_ground_truth_needs_no_bbox(tmp_path):
    gt = coco_gt(segm=True)
    for ann in gt["annotations"]:
        del ann["bbox"]
    assert _metrics(tmp_path, gt, coco_dets(segm=True), iou_type="segm")["AP50"] > 0


def test_compressed_rle_pixels_equal_pycocotools_decoding():
    rng = np.random.default_rng(0)
    strings, sizes = [], []
    for _ in range(60):
        h, w = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        mask = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        if rng.random() < 0.3:
            mask[:] = 0
        rle = mask_utils.encode(np.asfortranarray(mask))
        assert mask_utils.decode(rle).sum() == mask.sum()
        strings.append(rle["counts"].decode())
        sizes.append(h * w)
    pixels = compressed_rle_pixels(strings, chunk_chars=2000)  # several chunks
    assert pixels.tolist() == sizes
    # counts that pycocotools would encode but that do not fill the image
    short = mask_utils.frPyObjects({"size": [10, 10], "counts": [3, 4, 80]}, 10, 10)["counts"].decode()
    assert compressed_rle_pixels([short, "", "0", "\x7f"]).tolist() == [87, 0, 0, -1]
    # a number cut short (continuation bit on the last character), one too long for the
    # decoder, a negative run ('F': 5 bits 10110, sign set: -10), a non-ASCII character
    assert compressed_rle_pixels([strings[0] + "P", "PPPPPP0", "53F", "53", "é"]).tolist() == [-1, -1, -1, 8, -1]


# --- --out ------------------------------------------------------------------------------


@pytest.fixture
def no_evaluation(monkeypatch):
    """Fail the test if the evaluation runs: the --out checks come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("evaluated although --out was refused")

    monkeypatch.setattr(rankrepro.evaluation, "evaluate_files", refuse)


@pytest.fixture
def inputs(tmp_path):
    return write(tmp_path, "gt.json", coco_gt()), write(tmp_path, "dt.json", coco_dets())


def _evaluate_to(gt, dt, out, capsys):
    code = main(["evaluate", "--gt", str(gt), "--dt", str(dt), "--out", str(out)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("which", ["gt", "dt"])
@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "hardlink", "symlinked folder"])
def test_out_naming_an_input_is_refused(tmp_path, monkeypatch, capsys, no_evaluation, inputs, which, spelling):
    gt, dt = inputs
    target = gt if which == "gt" else dt
    before = target.read_bytes()
    monkeypatch.chdir(tmp_path)
    out = {
        "same": target,
        "relative": os.path.join(".", "sub", "..", target.name),
        "symlink": tmp_path / "link.json",
        "hardlink": tmp_path / "hard.json",
        "symlinked folder": tmp_path / "alias" / target.name,
    }[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "symlink":
        os.symlink(target, out)
    elif spelling == "hardlink":
        os.link(target, out)
    elif spelling == "symlinked folder":
        os.symlink(tmp_path, tmp_path / "alias")
    code, err = _evaluate_to(gt, dt, out, capsys)
    assert code == 2 and f"--out is the input file {target}; refusing to overwrite it" in err
    assert "Traceback" not in err and target.read_bytes() == before


def test_read_only_out_is_refused_before_evaluating(tmp_path, capsys, no_evaluation, inputs):
    out = tmp_path / "old_metrics.json"
    out.write_text("{}")
    out.chmod(0o444)
    code, err = _evaluate_to(*inputs, out, capsys)
    assert code == 2 and f"{out}: --out is read-only; refusing to replace it" in err
    assert out.read_text() == "{}"


def test_out_in_a_read_only_folder_is_refused(tmp_path, capsys, no_evaluation, inputs):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, err = _evaluate_to(*inputs, folder / "new" / "m.json", capsys)
    finally:
        folder.chmod(0o755)
    assert code == 2 and f"the folder {folder} is read-only" in err
    assert not (folder / "new").exists()


def test_out_under_a_file_or_onto_a_folder_is_refused(tmp_path, capsys, no_evaluation, inputs):
    gt, dt = inputs
    code, err = _evaluate_to(gt, dt, gt / "m.json", capsys)
    assert code == 2 and f"cannot create the folder {gt}: {gt} is not a folder" in err
    code, err = _evaluate_to(gt, dt, tmp_path, capsys)
    assert code == 2 and f"{tmp_path}: --out is a folder" in err


def test_out_in_missing_folders_is_created(tmp_path, capsys, inputs):
    out = tmp_path / "a" / "b" / "m.json"
    code, _ = _evaluate_to(*inputs, out, capsys)
    assert code == 0 and json.loads(out.read_text())["olrp_mode"] == "official"


def test_writable_existing_out_is_replaced(tmp_path, capsys, inputs):
    out = tmp_path / "m.json"
    out.write_text("old")
    code, _ = _evaluate_to(*inputs, out, capsys)
    assert code == 0 and "oLRP" in json.loads(out.read_text())


# --- --olrp-mode / --score-grid ---------------------------------------------------------


@pytest.mark.parametrize("step", ["0", "-0.01", "1e-5", "1.5", "nan", "inf", "tenth"])
def test_score_grid_outside_its_range_is_a_usage_error(tmp_path, capsys, inputs, step):
    gt, dt = inputs
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--gt", str(gt), "--dt", str(dt), "--out", str(tmp_path / "m.json"), "--olrp-mode", "threshold", "--score-grid", step])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "rankrepro evaluate: error: argument --score-grid:" in err and not (tmp_path / "m.json").exists()


def test_score_grid_needs_threshold_mode(tmp_path, capsys, inputs):
    gt, dt = inputs
    code = main(["evaluate", "--gt", str(gt), "--dt", str(dt), "--out", str(tmp_path / "m.json"), "--score-grid", "0.01"])
    assert code == 2 and "--score-grid applies to --olrp-mode threshold only" in capsys.readouterr().err


def test_score_grid_on_perfect_detections(tmp_path, capsys):
    # perfect detections have oLRP 0 on every valid grid (a negative step used to give 1)
    gt = coco_gt()
    perfect = [det(a["image_id"], a["category_id"], a["bbox"], 0.5) for a in gt["annotations"]]
    for step in ("0.0001", "0.01", "1"):
        code, out = _run_cli(tmp_path, gt, perfect, "--olrp-mode", "threshold", "--score-grid", step)
        metrics = json.loads(out.read_text())
        assert code == 0 and metrics["oLRP"] == 0.0
        assert metrics["olrp_mode"] == "threshold" and metrics["olrp_score_grid"] == float(step)


def test_olrp_mode_option(tmp_path, capsys):
    gt = box_gt({1: [(1, [0, 0, 10, 10])]})
    tie = [det(1, 1, [0, 0, 10, 8], 0.5), det(1, 1, [60, 60, 10, 10], 0.5)]  # TP listed first
    values = {}
    for mode in ("official", "threshold"):
        code, out = _run_cli(tmp_path, gt, tie, "--olrp-mode", mode)
        assert code == 0
        values[mode] = json.loads(out.read_text())["oLRP"]
    assert math.isclose(values["official"], 0.4) and math.isclose(values["threshold"], 0.7)
