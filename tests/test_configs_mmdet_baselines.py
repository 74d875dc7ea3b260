"""mmdet's Libra R-CNN, Dynamic R-CNN and Mask Scoring R-CNN, trained as the RS paper's Table 1
/ Table 4 baselines (configs/libra_rcnn, configs/dynamic_rcnn, configs/ms_rcnn): each is mmdet's
config unchanged but for the oLRP evaluator, and its smoke variant trains and evaluates."""
import json
from pathlib import Path

import pytest

pytest.importorskip("mmdet")
from mmengine.config import Config  # noqa: E402

from rankrepro import runner  # noqa: E402
from rankrepro.data.synthetic import make_synthetic_coco  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASELINES = {
    "configs/libra_rcnn/libra-faster-rcnn_r50_fpn_1x_coco.py": ("mmdet::libra_rcnn/libra-faster-rcnn_r50_fpn_1x_coco.py", ["bbox"]),
    "configs/dynamic_rcnn/dynamic-rcnn_r50_fpn_1x_coco.py": ("mmdet::dynamic_rcnn/dynamic-rcnn_r50_fpn_1x_coco.py", ["bbox"]),
    "configs/ms_rcnn/ms-rcnn_r50-caffe_fpn_1x_coco.py": ("mmdet::ms_rcnn/ms-rcnn_r50-caffe_fpn_1x_coco.py", ["bbox", "segm"]),
}


def _without_evaluators(cfg: Config) -> dict:
    out = cfg.to_dict()
    for key in ("val_evaluator", "test_evaluator", "custom_imports"):
        out.pop(key, None)
    return out


@pytest.mark.parametrize("rel", sorted(BASELINES))
def test_config_is_mmdets_own_with_the_olrp_evaluator(rel, tmp_path):
    base, metrics = BASELINES[rel]
    ours = Config.fromfile(str(ROOT / rel))
    probe = tmp_path / "mmdet_config.py"
    probe.write_text(f"_base_ = '{base}'\n")
    assert _without_evaluators(ours) == _without_evaluators(Config.fromfile(str(probe)))
    assert ours.val_evaluator.type == "CocoOLRPMetric" and ours.test_evaluator == ours.val_evaluator
    metric = ours.val_evaluator.get("metric", "bbox")
    assert ([metric] if isinstance(metric, str) else list(metric)) == metrics


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_baselines")
    make_synthetic_coco(root)
    return root


@pytest.mark.parametrize("rel", sorted(BASELINES))
def test_smoke_variant_trains_and_evaluates(rel, data_root, tmp_path):
    runner.train(rel, tmp_path, smoke=True, data_root=data_root, max_iters=2)
    out = tmp_path / "metrics.json"
    metrics = runner.test(rel, tmp_path / "iter_2.pth", tmp_path / "test", out=out, smoke=True, data_root=data_root)
    for kind in BASELINES[rel][1]:
        assert 0.0 <= metrics[f"coco/{kind}_oLRP"] <= 1.0
        assert f"coco/{kind}_mAP" in metrics
    assert json.loads(out.read_text())["metrics"]["coco/bbox_oLRP"] == pytest.approx(metrics["coco/bbox_oLRP"])
