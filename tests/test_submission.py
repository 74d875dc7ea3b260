"""COCO test-dev submissions (`rankrepro submit`, the workflow's submit_test_dev rule): the
format-only run gives exactly the model's detections under the right image and category ids,
zipped under COCO's upload name; bad inputs are clear errors."""
from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("mmdet")

from rankrepro import runner  # noqa: E402
from rankrepro import workflow as wf  # noqa: E402
from rankrepro.cli import main  # noqa: E402
from rankrepro.data.synthetic import make_synthetic_coco  # noqa: E402
from rankrepro.errors import RankReproError  # noqa: E402
from rankrepro.registry import Registry  # noqa: E402
from rankrepro.submission import algorithm_name, check_results, submit, write_image_info  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RS_FASTER_RCNN = "configs/faster_rcnn/rs_faster-rcnn_r50_fpn_1x_coco.py"
RS_MASK_RCNN = "configs/mask_rcnn/rs_mask-rcnn_r50_fpn_1x_coco.py"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("submit") / "data"
    make_synthetic_coco(root, num_train=4, num_val=6)
    return root


def _train(config, data, work, iters):
    runner.train(config, work, smoke=True, data_root=data, max_iters=iters)
    return work / f"iter_{iters}.pth"


def _coco_eval(gt_file, detections, iou_type):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        evaluator = COCOeval(gt, gt.loadRes(detections), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def _zipped_detections(archive: Path, member: str) -> list:
    with zipfile.ZipFile(archive) as z:
        assert z.namelist() == [member]
        return json.loads(z.read(member))


def test_cli_submission_holds_exactly_the_models_detections(data, tmp_path):
    """`rankrepro submit --smoke` on the stand-in (validation images without annotations):
    scoring the zipped file against the withheld annotations gives the AP that `rankrepro
    test` measures on the same checkpoint, so image ids, category ids and boxes are right."""
    checkpoint = _train(RS_FASTER_RCNN, data, tmp_path / "work", 2)
    record_file = tmp_path / "record.json"
    argv = ["submit", RS_FASTER_RCNN, str(checkpoint), "--smoke", "--data-root", str(data), "--max-iters", "2",
            "--work-dir", str(tmp_path / "sub"), "--experiment", "rs_faster-rcnn_r50_fpn_1x_coco",
            "--out-dir", str(tmp_path / "out"), "--out", str(record_file)]
    assert main(argv) == 0
    record = json.loads(record_file.read_text())
    assert set(record["files"]) == {"bbox"}
    entry = record["files"]["bbox"]
    assert entry["member"] == "detections_test-dev2017_rs-faster-rcnn-r50-fpn-1x-coco_results.json"
    archive = tmp_path / "out" / "rs_faster-rcnn_r50_fpn_1x_coco.bbox.zip"
    assert Path(entry["zip"]) == archive
    import hashlib

    assert hashlib.sha256(archive.read_bytes()).hexdigest() == entry["sha256"]
    detections = _zipped_detections(archive, entry["member"])
    assert len(detections) == entry["detections"] > 0
    assert entry["images"] == 6
    # the stand-in image-info file has the validation images and no annotations
    info = json.loads((tmp_path / "sub" / "image_info_synthetic-val.json").read_text())
    assert "annotations" not in info and len(info["images"]) == 6

    # the evaluation run of the same checkpoint (its results file and its metrics)
    tested = runner.test(RS_FASTER_RCNN, checkpoint, tmp_path / "test", smoke=True, data_root=data, max_iters=2)
    evaluated = json.loads((tmp_path / "test" / "test.bbox.json").read_text())

    def key(d):
        return (d["image_id"], d["category_id"], round(d["score"], 6), tuple(round(v, 3) for v in d["bbox"]))

    assert sorted(map(key, detections)) == sorted(map(key, evaluated))
    stats = _coco_eval(data / "annotations" / "instances_val.json", detections, "bbox")
    assert stats[0] == pytest.approx(tested["coco/bbox_mAP"], abs=5e-4)
    assert stats[1] == pytest.approx(tested["coco/bbox_mAP_50"], abs=5e-4)


def test_mask_model_submits_bbox_and_segm(data, tmp_path):
    checkpoint = _train(RS_MASK_RCNN, data, tmp_path / "work", 2)
    record = submit(RS_MASK_RCNN, str(checkpoint), tmp_path / "sub", tmp_path / "out", "rs_mask-rcnn_r50_fpn_1x_coco",
                    data_root=str(data), smoke=True, max_iters=2)
    assert set(record["files"]) == {"bbox", "segm"}
    segm = record["files"]["segm"]
    detections = _zipped_detections(Path(segm["zip"]), segm["member"])
    assert len(detections) == record["files"]["bbox"]["detections"] > 0
    assert all(set(d["segmentation"]) == {"size", "counts"} for d in detections)  # RLE, as the server reads
    # loadRes accepts it against the annotated split too, and every id is a validation image's
    stats = _coco_eval(data / "annotations" / "instances_val.json", detections, "segm")
    assert len(stats) == 12


def _image_info(tmp_path, data):
    return write_image_info(data / "annotations" / "instances_val.json", tmp_path / "info.json"), tmp_path / "info.json"


def test_results_with_foreign_ids_are_refused(data, tmp_path):
    info, info_file = _image_info(tmp_path, data)
    image, category = info["images"][0]["id"], info["categories"][0]["id"]
    good = [{"image_id": image, "category_id": category, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5}]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(good))
    assert check_results(path, info_file, "bbox") == {"detections": 1, "images_with_detections": 1, "images": 6}
    path.write_text(json.dumps([{**good[0], "category_id": 999}]))
    with pytest.raises(RankReproError, match=r"category ids \[999\] are not in"):
        check_results(path, info_file, "bbox")
    path.write_text(json.dumps([{**good[0], "image_id": 10**9}]))
    with pytest.raises(RankReproError, match="detections on images that are not in"):
        check_results(path, info_file, "bbox")
    path.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(RankReproError, match="JSON list of detections"):
        check_results(path, info_file, "bbox")
    path.write_text(json.dumps(good))
    with pytest.raises(RankReproError, match="have no 'segmentation'"):
        check_results(path, info_file, "segm")


def test_paper_scale_without_test_dev_files_is_a_clear_error(tmp_path):
    (tmp_path / "coco" / "annotations").mkdir(parents=True)
    with pytest.raises(RankReproError, match="image_info_test-dev2017.json: the COCO test-dev image-info file is missing"):
        submit(RS_FASTER_RCNN, "unused.pth", tmp_path / "sub", tmp_path / "out", "x", data_root=str(tmp_path))
    (tmp_path / "coco" / "annotations" / "image_info_test-dev2017.json").write_text("{}")
    (tmp_path / "coco" / "test2017").mkdir()
    with pytest.raises(RankReproError, match="test2017: the COCO test-dev images are missing"):
        submit(RS_FASTER_RCNN, "unused.pth", tmp_path / "sub", tmp_path / "out", "x", data_root=str(tmp_path))
    assert not (tmp_path / "out").exists()


def test_corrupt_annotation_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(RankReproError, match="cannot read a COCO annotation file"):
        write_image_info(bad, tmp_path / "info.json")
    assert not (tmp_path / "info.json").exists()


def test_algorithm_names_have_no_underscores():
    assert algorithm_name("rs_mask-rcnn_r101_fpn_ms-640-800-3x_coco") == "rs-mask-rcnn-r101-fpn-ms-640-800-3x-coco"


def test_test_dev_experiments_are_those_of_server_rows():
    reg = Registry.load()
    table3 = wf.test_dev_experiments(reg, "rs_paper/3")
    rows = [r for r in reg.rows("rs_paper/3") if r["split"] == "test-dev" and r["experiment"] and not r["quoted"]]
    assert table3 and set(table3) == {r["experiment"] for r in rows}
    assert wf.test_dev_experiments(reg, "rs_paper/2") == []  # a minival table submits nothing


def test_smoke_dag_submits_each_test_dev_model_once():
    """`reproduce_table8` at smoke scale: one submission job per test-dev model, each a
    `rankrepro submit --smoke` of that model's final checkpoint."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "reproduce_table8"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = re.findall(r"^rule submit_test_dev:\n(?:[ \t]+.*\n)*?[ \t]+wildcards: exp=(\S+)", proc.stdout, re.MULTILINE)
    expected = wf.test_dev_experiments(Registry.load(), "rs_paper/8")
    assert sorted(jobs) == expected
    for exp in expected:
        assert re.search(rf"rankrepro.cli submit \S+ \S+/{re.escape(exp)}/iter_\d+\.pth --smoke .*--experiment {exp} ",
                         proc.stdout)
