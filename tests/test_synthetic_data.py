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


# --------------------------------------------------------------------------- LVIS v1 and Cityscapes layouts

from rankrepro.data import formats  # noqa: E402


def test_coco_part_is_unchanged_by_the_extra_layouts(tmp_path):
    """The COCO annotation files are byte-identical to those of the generator before the LVIS
    and Cityscapes layouts were added (SHA-256 recorded from that version, same parameters)."""
    manifest = make_synthetic_coco(tmp_path / "d", num_train=6, num_val=3)
    assert manifest["files"]["annotations/instances_train.json"] == "12171a5051060eab42bb5d038bf91ba7d62c433ca81b2c38adc76892c5feb34f"
    assert manifest["files"]["annotations/instances_val.json"] == "4b953f595e0aa7089635718e87ab2b9cc3cc6cb79183e2401e8d49dbf207d5fd"
    # the manifest lists (and verify checks) the new files too
    assert "annotations/lvis_v1_val.json" in manifest["files"]
    assert "cityscapes/gtFine/val/shapes/shapes_000000_000003_gtFine_instanceIds.png" in manifest["files"]
    assert "cityscapes/gtFine/val/shapes/shapes_000000_000003_gtFine_labelIds.png" in manifest["files"]
    assert "cityscapes/leftImg8bit/val/shapes/shapes_000000_000003_leftImg8bit.png" in manifest["files"]
    lvis = tmp_path / "d" / "annotations" / "lvis_v1_val.json"
    lvis.write_text(lvis.read_text().replace('"area":', '"area": ', 1))
    with pytest.raises(ValueError, match=r"annotations/lvis_v1_val\.json"):
        verify_synthetic_coco(tmp_path / "d")


def test_lvis_frequencies_rule():
    # tertiles by image count: 2 rare, 2 common, 2 frequent of 6; ties: the higher id is rarer
    assert formats.lvis_frequencies({1: 144, 2: 105, 3: 97, 4: 62, 5: 39, 6: 27}) == {
        1: "f", 2: "f", 3: "c", 4: "c", 5: "r", 6: "r"}
    assert formats.lvis_frequencies({1: 5, 2: 5, 3: 5}) == {1: "f", 2: "c", 3: "r"}
    assert formats.lvis_frequencies({1: 9, 2: 0, 3: 4, 4: 7}) == {1: "f", 2: "r", 3: "c", 4: "c"}
    with pytest.raises(RankReproError):
        formats.lvis_frequencies({})
    with pytest.raises(RankReproError):
        formats.lvis_frequencies({1: -1})


def _lvis(root, split):
    from lvis import LVIS

    return LVIS(str(root / "annotations" / f"lvis_v1_{split}.json"))


def test_lvis_files_follow_the_lvis_v1_format(dataset):
    pytest.importorskip("lvis")
    root, manifest = dataset
    train_coco = _coco(root, "train")
    for split in ("train", "val"):
        lvis, coco = _lvis(root, split), _coco(root, split)
        assert sorted(lvis.get_img_ids()) == sorted(coco.getImgIds())
        assert len(lvis.get_ann_ids()) == len(coco.getAnnIds())
        for img in lvis.dataset["images"]:
            assert "file_name" not in img
            # mmdet's LVISV1Dataset strips this prefix: the COCO image of the same split
            assert img["coco_url"] == f"http://images.cocodataset.org/{split}/{coco.imgs[img['id']]['file_name']}"
            present = {a["category_id"] for a in coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))}
            assert img["neg_category_ids"] == sorted(set(range(1, len(CLASSES) + 1)) - present)
            assert img["not_exhaustive_category_ids"] == []
        for ann in lvis.dataset["annotations"]:
            assert "iscrowd" not in ann
            ref = coco.anns[ann["id"]]
            assert {k: ref[k] for k in ann} == ann
        # categories: counts over the train split in both splits' files
        for cat in lvis.dataset["categories"]:
            ids = train_coco.getAnnIds(catIds=[cat["id"]])
            assert cat["instance_count"] == len(ids)
            assert cat["image_count"] == len({train_coco.anns[i]["image_id"] for i in ids})
            assert cat["name"] == CLASSES[cat["id"] - 1]
    freq = {c["name"]: c["frequency"] for c in _lvis(root, "val").dataset["categories"]}
    assert freq == {"circle": "f", "square": "f", "triangle": "c", "ellipse": "c", "ring": "r", "cross": "r"}
    assert manifest["formats"]["lvis_v1"]["frequency"] == freq


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_lvis_ground_truth_against_itself_gives_ap_1(dataset, iou_type):
    pytest.importorskip("lvis")
    from lvis import LVISEval, LVISResults

    root, _ = dataset
    gt = _lvis(root, "val")
    dets = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": list(a["bbox"]),
         "segmentation": a["segmentation"], "score": 1.0}
        for a in gt.dataset["annotations"]
    ]
    from rankrepro.evaluation.lvis import _lvis_session  # lvis 0.5.3 needs np.float while it runs

    with _lvis_session():
        ev = LVISEval(gt, LVISResults(gt, copy.deepcopy(dets)), iou_type)
        ev.run()
        results = ev.get_results()
        for key in ("AP", "AP50", "APr", "APc", "APf"):
            assert results[key] == pytest.approx(1.0), key
        # and a false positive of a verified-negative class lowers AP (negatives are exhaustive)
        img = gt.dataset["images"][0]
        fp = {"image_id": img["id"], "category_id": img["neg_category_ids"][0], "bbox": [0.0, 0.0, 20.0, 20.0],
              "segmentation": [[0.0, 0.0, 20.0, 0.0, 20.0, 20.0, 0.0, 20.0]], "score": 2.0}
        ev = LVISEval(gt, LVISResults(gt, copy.deepcopy(dets) + [fp]), iou_type)
        ev.run()
        assert ev.get_results()["AP"] < 1.0


def test_mmdet_lvis_v1_dataset_loads(dataset):
    pytest.importorskip("mmdet")
    pytest.importorskip("lvis")
    from mmdet.datasets import LVISV1Dataset
    from mmdet.utils import register_all_modules

    register_all_modules()
    root, _ = dataset
    ds = LVISV1Dataset(data_root=str(root), ann_file="annotations/lvis_v1_val.json", data_prefix=dict(img=""),
                       metainfo=metainfo(), pipeline=[], test_mode=True)
    coco = _coco(root, "val")
    assert len(ds) == 50
    for item in (ds[0], ds[49]):
        assert item["img_path"] == str(root / "val" / coco.imgs[item["img_id"]]["file_name"])
        assert len(item["instances"]) == len(coco.getAnnIds(imgIds=item["img_id"]))


def test_cityscapes_layout(dataset):
    import cv2

    root, manifest = dataset
    cs = root / "cityscapes"
    names = {c: formats.CITYSCAPES_CLASSES[c] for c in CLASSES}
    assert manifest["formats"]["cityscapes"]["classes"] == names
    for split, n in (("train", 200), ("val", 50)):
        coco = _coco(root, split)
        city = COCO(str(cs / "annotations" / f"instancesonly_filtered_gtFine_{split}.json"))
        assert [c["name"] for c in city.dataset["categories"]] == [names[c] for c in CLASSES]
        assert [c["id"] for c in city.dataset["categories"]] == [formats.CITYSCAPES_LABEL_IDS[names[c]] for c in CLASSES]
        assert len(city.getImgIds()) == n
        for img in city.dataset["images"][:: 7 if split == "train" else 1]:
            stem = f"shapes_000000_{img['id']:06d}"
            assert img["file_name"] == f"shapes/{stem}_leftImg8bit.png"
            assert (cs / "leftImg8bit" / split / img["file_name"]).read_bytes() == (
                root / split / coco.imgs[img["id"]]["file_name"]).read_bytes()
            # segm_file: the semantic labelIds, as mmdet's converter writes; instanceIds beside it
            assert img["segm_file"] == f"shapes/{stem}_gtFine_labelIds.png"
            ids = cv2.imread(str(cs / "gtFine" / split / f"shapes/{stem}_gtFine_instanceIds.png"), cv2.IMREAD_UNCHANGED)
            assert ids.dtype == np.uint16 and ids.shape == (128, 128)
            label_ids = cv2.imread(str(cs / "gtFine" / split / img["segm_file"]), cv2.IMREAD_UNCHANGED)
            assert label_ids.dtype == np.uint8 and np.array_equal(label_ids, np.where(ids >= 1000, ids // 1000, ids))
            anns = city.loadAnns(city.getAnnIds(imgIds=img["id"]))
            covered = np.zeros(ids.shape, bool)
            for ann in anns:
                mask = coco.annToMask(coco.anns[ann["id"]]).astype(bool)  # the COCO polygons (exact masks)
                values = np.unique(ids[mask])
                assert len(values) == 1 and values[0] // 1000 == ann["category_id"]
                assert np.array_equal(ids == values[0], mask)
                covered |= mask
            assert np.all(ids[~covered] == formats.CITYSCAPES_BACKGROUND_ID)
            assert len({int(v) for v in np.unique(ids) if v >= 1000}) == len(anns)


def test_cityscapes_ground_truth_against_itself_gives_ap_1(dataset, tmp_path):
    pytest.importorskip("cityscapesscripts")
    import cv2

    from rankrepro.evaluation import evaluate_cityscapes

    root, _ = dataset
    gt = root / "cityscapes" / "gtFine" / "val"
    predictions = {}
    for path in sorted(gt.rglob("*_gtFine_instanceIds.png")):
        ids = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        predictions[path.name] = [(ids == v, int(v) // 1000, 1.0) for v in np.unique(ids) if v >= 1000]
    result = evaluate_cityscapes(gt, predictions, tmp_path / "eval")
    assert result["AP"] == pytest.approx(1.0) and result["AP50"] == pytest.approx(1.0)
    evaluated = {name for name, r in result["per_class"].items() if r["num_gt"] > 0}
    assert evaluated == set(formats.CITYSCAPES_CLASSES.values())  # bus and train have no instances


def test_mmdet_cityscapes_dataset_loads(dataset):
    pytest.importorskip("mmdet")
    from mmdet.datasets import CityscapesDataset
    from mmdet.utils import register_all_modules

    register_all_modules()
    root, _ = dataset
    ds = CityscapesDataset(data_root=str(root / "cityscapes"), ann_file="annotations/instancesonly_filtered_gtFine_train.json",
                           data_prefix=dict(img="leftImg8bit/train/"), metainfo=formats.cityscapes_metainfo(CLASSES),
                           filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=[])
    coco = _coco(root, "train")
    assert len(ds) == len({a["image_id"] for a in coco.dataset["annotations"]})
    item = ds[0]
    assert item["img_path"].endswith(f"cityscapes/leftImg8bit/train/shapes/shapes_000000_{item['img_id']:06d}_leftImg8bit.png")
    labels = sorted(inst["bbox_label"] for inst in item["instances"])
    assert labels == sorted(a["category_id"] - 1 for a in coco.loadAnns(coco.getAnnIds(imgIds=item["img_id"])))
