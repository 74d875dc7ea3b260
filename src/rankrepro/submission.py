"""COCO test-dev submissions: a format-only run of a trained model and the files to upload.

RS paper Tables 3 and 8 and the aLRP README's test-dev column report COCO test-dev, whose
annotations are private: their numbers come from COCO's evaluation server.  What the
workflow can do is everything up to the upload (``rankrepro submit``):

1. run the model on the test-dev images listed in ``image_info_test-dev2017.json`` (mmdet's
   ``CocoMetric`` with ``format_only=True``, as the commented test-dev block of mmdet's
   ``configs/_base_/datasets/coco_detection.py`` does), one results JSON per IoU type the
   config evaluates (``bbox``; ``segm`` for mask models);
2. check each results file with pycocotools (``COCO.loadRes`` against the image-info file:
   every image id and category id must belong to test-dev, boxes / RLE masks must parse);
3. zip each one as ``detections_test-dev2017_<alg>_results.json`` (the results-file naming of
   COCO's upload page: ``[type]_[testset]_[alg]_results.json``, zipped), ``<alg>`` being the
   experiment id without underscores, which that naming uses as separators;
4. write the record last (``--out``): the zips with their SHA-256, detections and images per
   file, and what to upload where.

At smoke scale the synthetic validation images stand in for test-dev: their image-info file is
the validation annotations without the annotations, so the same path (format-only run, check,
zip) runs on CPU in minutes; the record says it is a stand-in.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

from .atomic import replace_durably, write_atomic
from .errors import RankReproError

#: Under the paper-scale data root: mmdet's test-dev layout (configs/_base_/datasets/coco_detection.py).
TEST_DEV_ANN = "coco/annotations/image_info_test-dev2017.json"
TEST_DEV_IMAGES = "coco/test2017/"
#: The smoke stand-in, written into the work dir from the synthetic validation annotations.
SMOKE_IMAGE_INFO = "image_info_synthetic-val.json"
TEST_SET = "test-dev2017"


def algorithm_name(experiment: str) -> str:
    """The ``<alg>`` of COCO's ``[type]_[testset]_[alg]_results.json``: no underscores."""
    name = experiment.replace("_", "-").replace(".", "-")
    if not name:
        raise RankReproError("an empty experiment name cannot name a submission")
    return name


def write_image_info(annotations: str | os.PathLike, out: str | os.PathLike) -> dict:
    """A test-dev style image-info file (``images`` and ``categories``, no ``annotations``)
    from a COCO annotation file; returns its content."""
    try:
        with open(annotations) as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise RankReproError(f"{annotations}: cannot read a COCO annotation file ({err})") from None
    if not isinstance(data, dict) or "images" not in data or "categories" not in data:
        raise RankReproError(f"{annotations}: not a COCO annotation file (no 'images' / 'categories')")
    info = {"info": {"description": f"image info of {Path(annotations).name} (annotations removed)"},
            "images": data["images"], "categories": data["categories"]}
    write_atomic(out, json.dumps(info).encode())
    return info


def test_dev_inputs(data_root: str, work_dir: str, smoke: bool) -> tuple[str, str]:
    """(image-info file, image folder) of the split to submit: COCO test-dev under
    ``data_root``, or at smoke scale the synthetic validation images as a stand-in."""
    root = Path(data_root)
    if smoke:
        from .data.synthetic import verify_synthetic_coco

        verify_synthetic_coco(data_root)
        ann = Path(work_dir) / SMOKE_IMAGE_INFO
        write_image_info(root / "annotations" / "instances_val.json", ann)
        return str(ann.resolve()), str((root / "val").resolve()) + "/"
    ann, images = root / TEST_DEV_ANN, root / TEST_DEV_IMAGES
    if not ann.is_file():
        raise RankReproError(f"{ann}: the COCO test-dev image-info file is missing "
                             "(image_info_test2017.zip; the workflow's data rules download it)")
    if not images.is_dir() or not any(images.iterdir()):
        raise RankReproError(f"{images}: the COCO test-dev images are missing (test2017.zip)")
    return str(ann.resolve()), str(images.resolve()) + "/"


def format_only_options(metrics: list[str], ann_file: str, images: str, prefix: str) -> dict:
    """``--cfg-options`` that turn a config's test split into a format-only test-dev run:
    the image-info file and images, and mmdet's ``CocoMetric(format_only=True)`` in place of
    the config's evaluator (which needs annotations)."""
    return {
        "test_dataloader.dataset.ann_file": ann_file,
        "test_dataloader.dataset.data_prefix": {"img": images},
        "test_dataloader.dataset.test_mode": True,
        "test_evaluator": {"_delete_": True, "type": "CocoMetric", "metric": list(metrics), "format_only": True,
                           "ann_file": ann_file, "outfile_prefix": prefix},
    }


def evaluated_metrics(cfg) -> list[str]:
    evaluator = cfg.get("test_evaluator")
    if isinstance(evaluator, (list, tuple)) or not isinstance(evaluator, dict):
        raise RankReproError("test-dev submissions need a config with one COCO-style test_evaluator")
    metrics = evaluator.get("metric", "bbox")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unsupported = [m for m in metrics if m not in ("bbox", "segm")]
    if unsupported or not metrics:
        raise RankReproError(f"test-dev submissions are for 'bbox' / 'segm' results, not {unsupported or metrics}")
    if evaluator.get("type") not in ("CocoOLRPMetric", "CocoMetric", "mmdet.CocoMetric"):
        raise RankReproError(f"test-dev submissions are for COCO configs; this one evaluates with {evaluator.get('type')}")
    return metrics


def check_results(results: str | os.PathLike, image_info: str | os.PathLike, iou_type: str) -> dict:
    """Load ``results`` against the image-info file as COCO's server would (pycocotools'
    ``loadRes``); returns detections, images with detections, images in the split."""
    import contextlib
    import io

    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        gt = COCO(str(image_info))
    with open(results) as f:
        detections = json.load(f)
    if not isinstance(detections, list):
        raise RankReproError(f"{results}: a results file is a JSON list of detections")
    categories = set(gt.getCatIds())
    unknown = sorted({d.get("category_id") for d in detections} - categories, key=str)
    if unknown:
        raise RankReproError(f"{results}: category ids {unknown[:10]} are not in {image_info}")
    if detections:
        key = "segmentation" if iou_type == "segm" else "bbox"
        missing = sum(1 for d in detections if key not in d)
        if missing:
            raise RankReproError(f"{results}: {missing} detections have no '{key}'")
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                gt.loadRes(detections)  # asserts that every image id is in the split
        except AssertionError:
            raise RankReproError(f"{results}: detections on images that are not in {image_info}") from None
    return {"detections": len(detections), "images_with_detections": len({d["image_id"] for d in detections}),
            "images": len(gt.getImgIds())}


def zip_results(results: str | os.PathLike, out: str | os.PathLike, member: str) -> str:
    """``results`` zipped as ``member`` into ``out`` (temporary file, then rename); its SHA-256."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.write(results, arcname=member)
        digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
        os.chmod(tmp, 0o644)
        replace_durably(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return digest


def submit(config: str, checkpoint: str, work_dir: str, out_dir: str, experiment: str, *, data_root: str,
           smoke: bool = False, max_iters: int = 300, cfg_options: dict | None = None, launcher: str = "none",
           **load_kwargs) -> dict:
    """Run ``checkpoint`` format-only on COCO test-dev (or the smoke stand-in) and write
    ``<out_dir>/<experiment>.<iou>.zip`` for each IoU type; returns the record (not written)."""
    from .runner import load_config, test_checkpoint

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    ann_file, images = test_dev_inputs(data_root, work_dir, smoke)
    cfg = load_config(config, work_dir, smoke=smoke, data_root=data_root, max_iters=max_iters,
                      cfg_options=cfg_options, launcher=launcher, **load_kwargs)
    metrics = evaluated_metrics(cfg)
    prefix = str((work / "test-dev").resolve())
    for iou in metrics:  # never package a results file of an earlier run
        Path(f"{prefix}.{iou}.json").unlink(missing_ok=True)
    options = dict(cfg_options or {})
    options.update(format_only_options(metrics, ann_file, images, prefix))
    result = test_checkpoint(config, checkpoint, work_dir, smoke=smoke, data_root=data_root, max_iters=max_iters,
                             cfg_options=options, launcher=launcher, **load_kwargs)
    alg = algorithm_name(experiment)
    files = {}
    for iou in metrics:
        results = Path(f"{prefix}.{iou}.json")
        if not results.is_file():
            raise RankReproError(f"the format-only run wrote no {results}")
        counts = check_results(results, ann_file, iou)
        member = f"detections_{TEST_SET}_{alg}_results.json"
        archive = Path(out_dir) / f"{experiment}.{iou}.zip"
        files[iou] = {"zip": str(archive), "member": member, "sha256": zip_results(results, archive, member), **counts}
    return {
        "experiment": experiment,
        "split": "synthetic-val stand-in for COCO test-dev (smoke scale)" if smoke else "COCO test-dev2017",
        "image_info": ann_file,
        "config": str(config),
        "checkpoint": str(checkpoint),
        "checkpoint_config_differs": (not result.checkpoint_config["matches"]) if result.checkpoint_config["stored"] else None,
        "files": files,
        "upload": ("COCO's evaluation server (cocodataset.org, 'Upload'): the detection challenge for bbox, "
                   "the segmentation challenge for segm, phase test-dev; one zip per upload"),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``rankrepro submit`` beyond ``train`` / ``test``'s run options."""
    parser.add_argument("checkpoint", help="the trained checkpoint (.pth)")
    parser.add_argument("--experiment", required=True, help="the registry id that names the files")
    parser.add_argument("--out-dir", required=True, help="where the zips go")
    parser.add_argument("--out", required=True, help="the record (JSON), written last")
