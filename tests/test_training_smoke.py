"""Smoke variants train and evaluate end to end on the synthetic dataset (CPU)."""
import json

import pytest

pytest.importorskip("mmdet")

from rankrepro.data.synthetic import make_synthetic_coco  # noqa: E402
from model_cases import metrics_before_and_after_training  # noqa: E402
from rankrepro import runner  # noqa: E402

ATSS = "configs/atss/{}_r50_fpn_1x_coco.py"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_coco(root)
    return root


@pytest.mark.parametrize(
    "name",
    ["rs_atss", "brs_atss", "ap_atss", "ap_atss_centerness", "bap_atss", "alrp_atss", "fl_atss_no_centerness", "qfl_atss", "fl_atss"],
)
def test_atss_smoke_trains_and_evaluates(name, data_root, tmp_path):
    config = ATSS.format(name)
    runner.train(config, tmp_path, smoke=True, data_root=data_root, max_iters=4)
    checkpoint = tmp_path / "iter_4.pth"
    assert checkpoint.exists()
    out = tmp_path / "metrics.json"
    metrics = runner.test(config, checkpoint, tmp_path / "test", out=out, smoke=True, data_root=data_root, max_iters=4)
    for key in ("coco/bbox_mAP", "coco/bbox_oLRP", "coco/bbox_oLRP_Loc", "coco/bbox_oLRP_FP", "coco/bbox_oLRP_FN"):
        assert key in metrics
    assert 0.0 <= metrics["coco/bbox_oLRP"] <= 1.0
    saved = json.loads(out.read_text())
    assert saved["metrics"]["coco/bbox_oLRP"] == pytest.approx(metrics["coco/bbox_oLRP"])
    # the metric also leaves the rankrepro metrics JSON (per class, thresholds) for the tables
    detail = json.loads((tmp_path / "test" / "test.bbox.metrics.json").read_text())
    assert set(detail["per_class"]) == {"circle", "square", "triangle", "ellipse", "ring", "cross"}


def test_rs_atss_learns(data_root, tmp_path):
    """AP after a short CPU run is clearly above the untrained model's."""
    before, after = metrics_before_and_after_training(ATSS.format("rs_atss"), tmp_path, data_root, 200)
    print(f"RS-ATSS smoke: AP {before['coco/bbox_mAP']:.4f} -> {after['coco/bbox_mAP']:.4f}, "
          f"oLRP {before['coco/bbox_oLRP']:.4f} -> {after['coco/bbox_oLRP']:.4f}")
    assert after["coco/bbox_mAP"] > before["coco/bbox_mAP"] + 0.03
    assert after["coco/bbox_oLRP"] < before["coco/bbox_oLRP"] - 0.02


def test_smoke_needs_verified_data(tmp_path):
    with pytest.raises(ValueError, match="manifest.json"):
        runner.load_config(ATSS.format("rs_atss"), tmp_path, smoke=True, data_root=tmp_path)


OTHER_CONFIGS = sorted(
    str(p) for d in ("paa", "retinanet", "yolact", "solov2") for p in __import__("pathlib").Path("configs", d).glob("*.py")
)


@pytest.fixture(scope="module")
def small_data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_small")
    make_synthetic_coco(root, num_train=8, num_val=8)
    return root


@pytest.mark.parametrize("config", OTHER_CONFIGS, ids=lambda c: c.split("/", 1)[1])
def test_every_smoke_config_trains_and_evaluates(config, small_data_root, tmp_path):
    data = small_data_root
    runner.train(config, tmp_path, smoke=True, data_root=data, max_iters=2)
    metrics = runner.test(config, tmp_path / "iter_2.pth", tmp_path / "test", smoke=True, data_root=data, max_iters=2)
    iou_type = "segm" if "solov2" in config else "bbox"
    for key in ("mAP", "oLRP", "oLRP_Loc", "oLRP_FP", "oLRP_FN"):
        assert f"coco/{iou_type}_{key}" in metrics, key
    assert 0.0 <= metrics[f"coco/{iou_type}_oLRP"] <= 1.0
