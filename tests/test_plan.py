"""``rankrepro plan``: the cost of a table from the registry, the configs and the published times.

The expected numbers are written out by hand from configs/experiments.yaml (GPUs x images per
GPU), the configs' schedules (mmdet's schedule_1x: 12 epochs; Cityscapes: RepeatDataset x 8)
and configs/published/*.csv (time_s_per_iter), not recomputed with the module's functions.
"""
from __future__ import annotations

import json
import math

import pytest

from rankrepro.plan import DOCUMENTED_IMAGES, PlanError, main, make_plan
from rankrepro.registry import Registry, RegistryError

COCO_KEPT = 117266  # mmdet's COCO train2017 after filter_empty_gt (DOCUMENTED_IMAGES["coco"])


def _models(plan: dict, table_index: int = 0) -> dict:
    return {m.experiment: m for m in plan["tables"][table_index]["models"]}


def test_brs_readme_atss_plan_equals_hand_computation():
    plan = make_plan(["brs_readme_atss"], gpus=2, results=None)
    models = _models(plan)
    assert list(models) == ["ap_atss_r50_fpn_1x_coco", "bap_atss_r50_fpn_1x_coco", "rs_atss_r50_fpn_1x_coco",
                            "brs_atss_r50_fpn_1x_coco"]
    # every model: 4 GPUs x 4 images, 12 epochs (schedule_1x), COCO's 117266 kept images.
    # per rank: ceil(117266 / 4) = 29317 images -> ceil(29317 / 4) = 7330 iterations per epoch
    iterations = 12 * 7330
    assert iterations == 87960
    # published s/iter: the Bucketed README's ATSS rows, except RS-ATSS, whose RS paper
    # Table A.19 time (0.70, V100) is preferred over the Bucketed README's 0.44
    published = {"ap_atss_r50_fpn_1x_coco": 0.34, "bap_atss_r50_fpn_1x_coco": 0.18,
                 "rs_atss_r50_fpn_1x_coco": 0.70, "brs_atss_r50_fpn_1x_coco": 0.19}
    gpu_hours = {"ap_atss_r50_fpn_1x_coco": 87960 * 0.34 * 4 / 3600,  # 33.229
                 "bap_atss_r50_fpn_1x_coco": 87960 * 0.18 * 4 / 3600,  # 17.592
                 "rs_atss_r50_fpn_1x_coco": 87960 * 0.70 * 4 / 3600,  # 68.413
                 "brs_atss_r50_fpn_1x_coco": 87960 * 0.19 * 4 / 3600}  # 18.569
    # on 2 GPUs (accumulation 2): per rank ceil(117266 / 2) = 58633 -> ceil(58633 / 4) = 14659 per epoch
    wall_iterations = 12 * 14659
    for exp_id, m in models.items():
        assert (m.epochs, m.images_per_epoch, m.images_how) == (12, COCO_KEPT, "documented")
        assert (m.published_gpus, m.images_per_gpu, m.iterations_per_epoch, m.iterations) == (4, 4, 7330, iterations)
        assert m.s_per_iter == published[exp_id]
        assert m.gpu_hours == pytest.approx(gpu_hours[exp_id])
        assert (m.gpus_used, m.accumulation, m.iterations_on_gpus) == (2, 2, wall_iterations)
        assert m.wall_hours == pytest.approx(wall_iterations * published[exp_id] / 3600)
    rs = models["rs_atss_r50_fpn_1x_coco"]
    assert rs.s_per_iter_source.startswith("rs_paper/A.19/atss/rs_loss")
    assert [t["s_per_iter"] for t in rs.other_times] == [0.44]
    assert "0.44 in brs_readme/atss/rs" in rs.s_per_iter_why
    total = plan["tables"][0]["total"]
    assert total["gpu_hours"] == pytest.approx(87960 * 4 / 3600 * (0.34 + 0.18 + 0.70 + 0.19))  # 137.80
    assert total["wall_hours"] == pytest.approx(175908 * (0.34 + 0.18 + 0.70 + 0.19) / 3600)  # 68.89
    assert (total["models"], total["models_with_time"], total["models_without_time"]) == (4, 4, 0)


def test_repeat_dataset_epochs_and_inexact_count_on_cityscapes():
    plan = make_plan(["brs_readme_mask_rcnn_cityscapes"], results=None)
    models = _models(plan)
    # 2975 Cityscapes train images x RepeatDataset 8 = 23800 per epoch; 4 GPUs x 4 images:
    # ceil(23800 / 4) = 5950 per rank -> ceil(5950 / 4) = 1488 iterations per epoch, 12 epochs
    for exp_id, seconds in (("rs_mask-rcnn_r50_fpn_1x_cityscapes", 0.43), ("brs_mask-rcnn_r50_fpn_1x_cityscapes", 0.19)):
        m = models[exp_id]
        assert (m.epochs, m.images_per_epoch, m.iterations) == (12, 23800, 12 * 1488)
        assert m.images_how == "file count" and "RepeatDataset x8" in m.images_note
        assert m.gpu_hours == pytest.approx(17856 * seconds * 4 / 3600)
    assert plan["tables"][0]["total"]["models_with_inexact_images"] == 2


def test_rfs_epoch_length_is_flagged_without_annotations():
    m = _models(make_plan(["rs_readme_mask_rcnn_lvis"], results=None))["rs_mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1"]
    assert m.images_how == "rfs lower bound"
    assert m.images_per_epoch == DOCUMENTED_IMAGES["lvis"].images
    assert "needs the annotations" in m.images_note


def test_models_without_a_published_time_are_counted_and_excluded():
    plan = make_plan(["reproduce_table1"], results=None)
    models = _models(plan)
    timed = {"faster-rcnn_r50_fpn_1x_coco": (8, 0.42), "rs_faster-rcnn_r50_fpn_1x_coco": (4, 0.82)}
    assert {e for e, m in models.items() if m.s_per_iter is not None} == set(timed)
    total = plan["tables"][0]["total"]
    assert (total["models"], total["models_with_time"], total["models_without_time"]) == (8, 2, 6)
    # Faster R-CNN (mmdet's recipe, 8 GPUs x 2): ceil(117266 / 8) = 14659 -> ceil(14659 / 2) = 7330 per epoch
    assert models["faster-rcnn_r50_fpn_1x_coco"].iterations == 12 * 7330
    assert total["gpu_hours"] == pytest.approx(87960 * 0.42 * 8 / 3600 + 87960 * 0.82 * 4 / 3600)  # 82.1 + 80.2
    # A.19 may have timed the baseline at the RS model's 4 images/GPU (the paper only replaces the loss)
    assert "rs_faster-rcnn_r50_fpn_1x_coco) 4" in models["faster-rcnn_r50_fpn_1x_coco"].s_per_iter_why
    assert "caveat" not in (models["rs_faster-rcnn_r50_fpn_1x_coco"].s_per_iter_why or "")

    # --s-per-iter SECONDS fills in the six others; EXP=SECONDS sets one model
    given = make_plan(["1"], results=None, s_per_iter=["0.5", "rs_faster-rcnn_r50_fpn_1x_coco=1.0"])
    gm = _models(given)
    assert given["tables"][0]["total"]["models_without_time"] == 0
    assert gm["rs_faster-rcnn_r50_fpn_1x_coco"].s_per_iter == 1.0
    assert gm["libra-faster-rcnn_r50_fpn_1x_coco"].s_per_iter_source == "--s-per-iter"
    gpu_seconds = sum(m.published_gpus * 87960 * m.s_per_iter for m in gm.values())
    assert given["tables"][0]["total"]["gpu_hours"] == pytest.approx(gpu_seconds / 3600)


def _write_coco(root, images, annotations):
    ann = root / "coco" / "annotations"
    ann.mkdir(parents=True)
    categories = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 999, "name": "not-a-coco-class"}]
    (ann / "instances_train2017.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": categories}))


def test_data_root_counts_what_mmdet_keeps(tmp_path):
    images, annotations = [], []

    def image(i, w=640, h=480):
        images.append({"id": i, "file_name": f"{i:012d}.jpg", "width": w, "height": h})

    def box(i, cat=1, crowd=0):
        annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": cat, "bbox": [10, 10, 50, 40],
                            "area": 2000.0, "iscrowd": crowd, "segmentation": [[10, 10, 60, 10, 60, 50]]})

    for i in range(1, 10):  # 9 images with a COCO-class box: kept
        image(i)
        box(i, cat=1 if i % 2 else 3)
    for i in range(10, 14):  # 4 without annotations: dropped (filter_empty_gt)
        image(i)
    image(14, w=20, h=400)  # under min_size=32: dropped
    box(14)
    image(15)  # only a category that is no COCO class: dropped
    box(15, cat=999)
    image(16)  # only a crowd box: kept (mmdet keeps images with any annotation of its classes)
    box(16, crowd=1)
    _write_coco(tmp_path, images, annotations)
    kept = 9 + 1

    plan = make_plan(["brs_readme_atss"], data_root=str(tmp_path), results=None)
    for m in plan["tables"][0]["models"]:
        assert (m.images_per_epoch, m.images_how) == (kept, "counted")
        assert str(tmp_path / "coco" / "annotations" / "instances_train2017.json") in m.images_note
        # 4 GPUs x 4: ceil(10 / 4) = 3 per rank -> 1 iteration per epoch
        assert m.iterations == 12 * math.ceil(math.ceil(kept / 4) / 4) == 12

    # a data root without the Cityscapes annotations: documented count, the missing file named
    other = make_plan(["brs_readme_mask_rcnn_cityscapes"], data_root=str(tmp_path), results=None)
    m = other["tables"][0]["models"][0]
    assert m.images_how == "file count" and m.images_per_epoch == 2975 * 8
    assert "instancesonly_filtered_gtFine_train.json not found" in m.images_note


def test_unknown_table_and_bad_options_are_clear_errors(capsys):
    with pytest.raises(RegistryError, match=r"unknown table 'tableZ'; known tables: .*table1"):
        make_plan(["tableZ"], results=None)
    assert main(["no_such_table"]) == 2
    assert "rankrepro plan: error: unknown table 'no_such_table'" in capsys.readouterr().err
    with pytest.raises(PlanError, match=r"--gpus 3: .*use a divisor of 4"):
        make_plan(["brs_readme_atss"], gpus=3, results=None)
    with pytest.raises(PlanError, match="unknown experiment 'nope'"):
        make_plan(["brs_readme_atss"], s_per_iter=["nope=1"], results=None)
    with pytest.raises(PlanError, match="is not a folder"):
        make_plan(["brs_readme_atss"], data_root="/nonexistent/data", results=None)


def test_targets_as_the_workflow_names_them():
    from rankrepro.plan import resolve_targets

    reg = Registry.load()
    for name in ("reproduce_table1", "table1", "1", "rs_paper/1"):
        assert resolve_targets(reg, [name]) == ["rs_paper/1"]
    assert resolve_targets(reg, ["A.11", "brs_readme_atss", "tableA11"]) == ["rs_paper/A.11", "brs_readme/atss"]
    assert resolve_targets(reg, ["reproduce_all"]) == list(reg.tables)


def test_trained_models_are_marked_and_left_out_of_the_remaining_total(tmp_path, capsys):
    metrics = tmp_path / "paper" / "metrics"
    metrics.mkdir(parents=True)
    (metrics / "brs_atss_r50_fpn_1x_coco.json").write_text("{}")
    plan = make_plan(["brs_readme_atss"], results=str(tmp_path))
    models = _models(plan)
    assert [e for e, m in models.items() if m.trained] == ["brs_atss_r50_fpn_1x_coco"]
    total = plan["tables"][0]["total"]
    assert total["models_trained"] == 1
    assert total["gpu_hours_remaining"] == pytest.approx(total["gpu_hours"] - 87960 * 0.19 * 4 / 3600)
    # the command line: text and JSON
    assert main(["brs_readme_atss", "--results", str(tmp_path), "--gpus", "4"]) == 0
    text = capsys.readouterr().out
    assert "total: 137.8 GPU-hours over 4 of 4 models" in text and "1 already trained" in text
    assert main(["brs_readme_atss", "--results", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tables"][0]["total"]["gpu_hours"] == pytest.approx(137.8033, abs=1e-3)


def test_data_root_gives_the_rfs_epoch_length_on_lvis(tmp_path):
    # 2000 LVIS-format images: 1999 with category 1, one with the rare category 2 (and 1).
    # RFS (oversample_thr 1e-3): f_2 = 1 / 2000 = 5e-4 -> r_2 = sqrt(1e-3 / 5e-4) = 1.414; f_1 = 1 -> r_1 = 1.
    # An image repeats ceil(max r of its categories) times: the rare one twice, the others once.
    n = 2000
    images = [{"id": i, "width": 640, "height": 480, "coco_url": f"http://images.cocodataset.org/train2017/{i:012d}.jpg",
               "neg_category_ids": [], "not_exhaustive_category_ids": []} for i in range(1, n + 1)]
    annotations = [{"id": i, "image_id": i, "category_id": 1, "bbox": [10, 10, 50, 40], "area": 2000.0,
                    "segmentation": [[10, 10, 60, 10, 60, 50]]} for i in range(1, n + 1)]
    annotations.append({"id": n + 1, "image_id": n, "category_id": 2, "bbox": [100, 100, 30, 30], "area": 900.0,
                        "segmentation": [[100, 100, 130, 100, 130, 130]]})
    categories = [{"id": 1, "name": "aerosol_can", "frequency": "f"}, {"id": 2, "name": "air_conditioner", "frequency": "r"}]
    ann = tmp_path / "lvis_v1" / "annotations"
    ann.mkdir(parents=True)
    (ann / "lvis_v1_train.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                        "categories": categories}))
    m = _models(make_plan(["rs_readme_mask_rcnn_lvis"], data_root=str(tmp_path), results=None))[
        "rs_mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1"]
    assert (m.images_per_epoch, m.images_how) == (n + 1, "counted")
    assert "ClassBalancedDataset" in m.images_note
    # 4 GPUs x 4: ceil(2001 / 4) = 501 per rank -> ceil(501 / 4) = 126 iterations per epoch, 12 epochs
    assert m.iterations == 12 * 126


@pytest.mark.parametrize("images, gpus, per_gpu", [(117266, 4, 4), (117266, 8, 2), (23800, 4, 4), (10, 4, 4),
                                                   (2001, 2, 4), (37, 3, 5)])
def test_batches_per_epoch_is_what_mmengine_and_mmdet_iterate(monkeypatch, images, gpus, per_gpu):
    """The formula against the real samplers: mmengine's DefaultSampler on rank 0 of ``gpus`` ranks
    (its world size read from get_dist_info, set here) and mmdet's AspectRatioBatchSampler over
    images of both orientations, iterated to the end."""
    import mmengine.dataset.sampler as sampler_module
    from mmdet.datasets.samplers import AspectRatioBatchSampler
    from mmengine.dataset import DefaultSampler

    from rankrepro.plan import batches_per_epoch

    class Images:
        def __len__(self):
            return images

        def get_data_info(self, i):  # every third image portrait, the others landscape
            return {"width": 480, "height": 640} if i % 3 == 0 else {"width": 640, "height": 480}

    monkeypatch.setattr(sampler_module, "get_dist_info", lambda: (0, gpus))
    sampler = DefaultSampler(Images(), shuffle=True, seed=0)
    iterated = sum(1 for _ in AspectRatioBatchSampler(sampler, per_gpu))
    assert iterated == batches_per_epoch(images, gpus, per_gpu)


def test_rankrepro_plan_is_the_module_command(capsys):
    """`rankrepro plan` (the CLI) prints what `python -m rankrepro.plan` prints."""
    from rankrepro.cli import main as cli_main

    assert main(["brs_readme_atss", "--json"]) == 0
    module = json.loads(capsys.readouterr().out)
    assert cli_main(["plan", "brs_readme_atss", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == module
    assert cli_main(["plan", "no_such_table"]) == 2
    assert "rankrepro plan: error:" in capsys.readouterr().err
