"""The embedded synthetic COCO dataset: format, consistency, determinism, imbalance, verification."""
import copy
import json
from collections import Counter

import numpy as np
import pytest

from rankrepro.data import CLASSES, make_synthetic_coco, mask_to_polygons, metainfo, verify_synthetic_coco
from rankrepro.errors import RankReproError

pycocotools = pytest.importorskip("pycocotools")
from pycocotools import mask as mask_utils  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def _coco(root, split):
    return COCO(str(root / "annotations" / f"instances_{split}.json"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    manifest = make_synthetic_coco(root)  # the defaults
    return root, manifest


def test_layout_and_pycocotools_load(dataset):
    root, manifest = dataset
    assert manifest["params"]["num_train"] == 200 and manifest["params"]["num_val"] == 50
    assert json.loads((root / "manifest.json").read_text()) == manifest
    for split, n in (("train", 200), ("val", 50)):
        coco = _coco(root, split)
        assert len(coco.getImgIds()) == n
        assert sorted(p.name for p in (root / split).glob("*.png")) == sorted(
            img["file_name"] for img in coco.dataset["images"]
        )
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
        assert len(coco.getAnnIds()) >= n  # at least one object per image on average
        assert set(manifest["files"]) >= {f"{split}/{img['file_name']}" for img in coco.dataset["images"]}
    assert "annotations/instances_train.json" in manifest["files"]


@pytest.mark.parametrize("split", ["train", "val"])
def test_annotations_consistent_with_masks(dataset, split):
    root, _ = dataset
    coco = _coco(root, split)
    for img in coco.dataset["images"]:
        assert (img["width"], img["height"]) == (128, 128)
    ids = [a["id"] for a in coco.dataset["annotations"]]
    assert len(set(ids)) == len(ids) and min(ids) >= 1
    for ann in coco.dataset["annotations"]:
        img = coco.imgs[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        assert ann["iscrowd"] == 0 and 1 <= ann["category_id"] <= len(CLASSES)
        assert x >= 0 and y >= 0 and w > 0 and h > 0
        assert x + w <= img["width"] and y + h <= img["height"]
        polys = ann["segmentation"]
        assert isinstance(polys, list) and polys
        assert all(len(p) >= 6 and len(p) % 2 == 0 for p in polys)
        mask = coco.annToMask(ann)
        assert abs(int(mask.sum()) - ann["area"]) <= max(2, 0.02 * ann["area"])
        bbox = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask))).tolist()
        assert np.allclose(bbox, ann["bbox"], atol=1.0)
        assert ann["area"] >= 16


def test_polygons_reproduce_masks_with_holes():
    """The keyhole polygons rasterise (pycocotools) to exactly the mask, holes and touching parts included."""
    import cv2

    rng = np.random.default_rng(3)
    for _ in range(200):
        m = np.zeros((48, 40), np.uint8)
        for _ in range(int(rng.integers(1, 5))):
            centre = tuple(int(v) for v in rng.integers(0, 40, 2))
            cv2.circle(m, centre, int(rng.integers(2, 14)), int(rng.integers(0, 2)), int(rng.choice([-1, 1, 2])))
        m[rng.random(m.shape) < 0.03] = 0
        if not m.any():
            continue
        rle = mask_utils.merge(mask_utils.frPyObjects(mask_to_polygons(m), *m.shape))
        assert np.array_equal(mask_utils.decode(rle), m)


def test_class_imbalance_and_val_coverage(dataset):
    root, manifest = dataset
    train = Counter(a["category_id"] for a in _coco(root, "train").dataset["annotations"])
    val = Counter(a["category_id"] for a in _coco(root, "val").dataset["annotations"])
    assert set(train) == set(val) == set(range(1, len(CLASSES) + 1))
    assert max(train.values()) > 3 * min(train.values())
    # roughly decaying in CLASSES order
    assert train[1] == max(train.values()) and train[len(CLASSES)] == min(train.values())
    assert manifest["instances"]["train"] == {CLASSES[c - 1]: n for c, n in train.items()}


def test_sizes_span_coco_area_ranges(dataset):
    root, _ = dataset
    areas = np.array([a["area"] for a in _coco(root, "train").dataset["annotations"]])
    small, medium = (areas < 32**2).sum(), ((areas >= 32**2) & (areas < 96**2)).sum()
    assert small >= 0.15 * len(areas) and medium >= 0.15 * len(areas)


def test_occlusion_present(dataset):
    root, _ = dataset
    coco = _coco(root, "train")
    overlapping = 0
    for image_id in coco.getImgIds():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        for i, a in enumerate(anns):
            for b in anns[i + 1 :]:
                ax, ay, aw, ah = a["bbox"]
                bx, by, bw, bh = b["bbox"]
                overlapping += min(ax + aw, bx + bw) > max(ax, bx) and min(ay + ah, by + bh) > max(ay, by)
    assert overlapping >= 20


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_ground_truth_against_itself_gives_ap_1(dataset, iou_type):
    root, _ = dataset
    gt = _coco(root, "val")
    dets = []
    for ann in gt.dataset["annotations"]:
        det = {"image_id": ann["image_id"], "category_id": ann["category_id"], "score": 1.0}
        if iou_type == "bbox":
            det["bbox"] = list(ann["bbox"])
        else:
            rle = gt.annToRLE(ann)
            det["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
        dets.append(det)
    ev = COCOeval(gt, gt.loadRes(copy.deepcopy(dets)), iou_type)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)  # AP
    assert ev.stats[1] == pytest.approx(1.0)  # AP50
    assert ev.stats[3] == pytest.approx(1.0)  # AP small


def test_deterministic_and_seed_dependent(tmp_path):
    kwargs = dict(num_train=12, num_val=4)
    a = make_synthetic_coco(tmp_path / "a", seed=7, **kwargs)
    b = make_synthetic_coco(tmp_path / "b", seed=7, **kwargs)
    c = make_synthetic_coco(tmp_path / "c", seed=8, **kwargs)
    assert a["files"] == b["files"]
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    assert set(a["files"]) == set(c["files"])
    assert all(a["files"][k] != c["files"][k] for k in a["files"])
    # Regenerating smaller in place removes the images that no longer belong.
    make_synthetic_coco(tmp_path / "a", seed=7, num_train=5, num_val=2)
    assert len(list((tmp_path / "a" / "train").glob("*.png"))) == 5
    verify_synthetic_coco(tmp_path / "a")


def test_verify_detects_damage(tmp_path):
    root = tmp_path / "d"
    make_synthetic_coco(root, num_train=6, num_val=3)
    verify_synthetic_coco(root)

    png = root / "val" / "000002.png"
    original = png.read_bytes()
    png.write_bytes(original[:-10] + b"0123456789")
    with pytest.raises(ValueError, match=r"val/000002\.png"):
        verify_synthetic_coco(root)
    png.unlink()
    with pytest.raises(ValueError, match=r"val/000002\.png.*missing"):
        verify_synthetic_coco(root)
    png.write_bytes(original)
    verify_synthetic_coco(root)

    ann = root / "annotations" / "instances_train.json"
    ann.write_text(ann.read_text().replace('"iscrowd":0', '"iscrowd":1', 1))
    with pytest.raises(ValueError, match=r"annotations/instances_train\.json"):
        verify_synthetic_coco(root)

    (root / "manifest.json").unlink()
    with pytest.raises(ValueError, match=r"manifest\.json is missing"):
        verify_synthetic_coco(root)


def test_metainfo():
    info = metainfo()
    assert info["classes"] == CLASSES
    assert len(info["palette"]) == len(CLASSES) == len(set(info["palette"]))
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in info["palette"])
    assert len(CLASSES) >= 5


def test_mmdet_coco_dataset_loads(dataset):
    pytest.importorskip("mmdet")
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules

    register_all_modules()
    root, _ = dataset
    ds = CocoDataset(
        data_root=str(root),
        ann_file="annotations/instances_train.json",
        data_prefix=dict(img="train/"),
        metainfo=metainfo(),
        pipeline=[],
    )
    assert len(ds) == 200
    item = ds[0]
    coco = _coco(root, "train")
    anns = coco.loadAnns(coco.getAnnIds(imgIds=item["img_id"]))
    assert item["img_path"].endswith("train/" + coco.imgs[item["img_id"]]["file_name"])
    assert len(item["instances"]) == len(anns)
    for inst, ann in zip(item["instances"], anns):
        x, y, w, h = ann["bbox"]
        assert inst["bbox"] == pytest.approx([x, y, x + w, y + h])
        assert inst["bbox_label"] == ann["category_id"] - 1
        assert inst["ignore_flag"] == 0
        assert inst["mask"] == ann["segmentation"]


# --------------------------------------------------------------------------- where make-data may write


def test_refuses_a_folder_it_did_not_generate(tmp_path):
    folder = tmp_path / "mine"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "holiday.png").write_bytes(b"my photo")
    with pytest.raises(RankReproError, match=rf"{folder}.*not empty.*manifest\.json"):
        make_synthetic_coco(folder, num_train=3, num_val=2)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == ["train", "train/holiday.png"]
    # a file instead of a folder
    with pytest.raises(RankReproError, match="not a folder"):
        make_synthetic_coco(folder / "train" / "holiday.png", num_train=3, num_val=2)


def test_regeneration_never_touches_foreign_files(tmp_path):
    root = tmp_path / "d"
    make_synthetic_coco(root, num_train=6, num_val=2)
    (root / "train" / "holiday.png").write_bytes(b"my photo")
    (root / "notes.txt").write_text("my notes")
    make_synthetic_coco(root, num_train=3, num_val=2)  # smaller: drops train/000004..6.png, which it wrote
    assert sorted(p.name for p in (root / "train").glob("0*.png")) == ["000001.png", "000002.png", "000003.png"]
    assert (root / "train" / "holiday.png").read_bytes() == b"my photo"
    assert (root / "notes.txt").read_text() == "my notes"
    verify_synthetic_coco(root)

    # A file of the user's under a name that a larger dataset would write: refused, nothing changed.
    (root / "train" / "000005.png").write_bytes(b"also mine")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with pytest.raises(RankReproError, match=r"train/000005\.png"):
        make_synthetic_coco(root, num_train=6, num_val=2)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    verify_synthetic_coco(root)


def test_regeneration_after_the_manifest_was_deleted(tmp_path):
    """Snakemake deletes a job's output (manifest.json) before re-running it: the folder is still
    recognised by its annotation files, and still only our files are replaced."""
    root = tmp_path / "d"
    make_synthetic_coco(root, num_train=5, num_val=2)
    (root / "manifest.json").unlink()
    (root / "val" / "mine.png").write_bytes(b"mine")
    make_synthetic_coco(root, num_train=3, num_val=2, seed=1)
    verify_synthetic_coco(root)
    assert sorted(p.name for p in (root / "train").glob("*.png")) == ["000001.png", "000002.png", "000003.png"]
    assert (root / "val" / "mine.png").read_bytes() == b"mine"


def test_killed_generation_is_detected_and_can_be_redone(tmp_path):
    """SIGKILL during `make-data`: the folder is recognised as ours (not refused as foreign),
    verification says the generation did not finish, and a second run completes it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = tmp_path / "d"
    proc = subprocess.Popen([sys.executable, "-m", "rankrepro.cli", "make-data", str(root), "--num-train", "3000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list((root / "train").glob("*.png"))) < 5:
            assert proc.poll() is None, "make-data ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with pytest.raises(RankReproError, match="did not finish"):
        verify_synthetic_coco(root)
    make_synthetic_coco(root, num_train=4, num_val=2)
    verify_synthetic_coco(root)
    assert sorted(p.name for p in (root / "train").glob("*.png")) == [f"{i:06d}.png" for i in range(1, 5)]
    assert not list(root.rglob("*.tmp"))
