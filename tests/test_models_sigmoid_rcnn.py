"""Faster R-CNN trained by Focal Loss (RS paper App. C.5, Table A.18): SigmoidShared2FCBBoxHead
(class-wise sigmoid Focal Loss, GIoU weight 2, prior 0.01), mmdet's RPNHead with Focal Loss,
and the three configs configs/faster_rcnn/fl_faster-rcnn_r50_fpn_giou_*_1x_coco.py."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch

pytest.importorskip("mmdet")
from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss  # noqa: E402
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures.bbox import bbox_overlaps  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmengine.config import Config, ConfigDict  # noqa: E402
from model_cases import assert_gradients_reach, hand_made_rois, random_batch, recorded, small_roi_box_head, total_loss  # noqa: E402

import rankrepro.models  # noqa: E402,F401  (registers the heads)
from rankrepro.data.synthetic import CLASSES  # noqa: E402
from rankrepro.models.roi_heads import SigmoidShared2FCBBoxHead  # noqa: E402
from rankrepro.smoke import smoke_config  # noqa: E402

register_all_modules()
ROOT = Path(__file__).resolve().parents[1]
NUM_CLASSES = 3
STDS = [0.1, 0.1, 0.2, 0.2]
PRIOR_BIAS = -math.log(99.0)  # sigmoid(b) = 0.01
FL_IDS = {
    # id: (rpn sampler, rcnn sampler)
    "fl_faster-rcnn_r50_fpn_giou_rpn-random_rcnn-random_1x_coco": ("random", "random"),
    "fl_faster-rcnn_r50_fpn_giou_rpn-none_rcnn-random_1x_coco": ("none", "random"),
    "fl_faster-rcnn_r50_fpn_giou_rpn-none_rcnn-none_1x_coco": ("none", "none"),
}
CONFIG = "configs/faster_rcnn/{}.py"
RANDOM_RPN = dict(type="RandomSampler", num=256, pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=False)
RANDOM_RCNN = dict(type="RandomSampler", num=512, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True)
NO_SAMPLER_RCNN = dict(type="RandomSampler", num=1e10, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True)
FOCAL = dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)


# ---------------------------------------------------------------------------- helpers
def plain(value):
    return value.to_dict() if hasattr(value, "to_dict") else value


def sigmoid_head(**overrides) -> SigmoidShared2FCBBoxHead:
    head = small_roi_box_head("SigmoidShared2FCBBoxHead", NUM_CLASSES, STDS, **overrides)
    head.init_weights()
    return head


def fixed_batch(seed=0):
    """6 RoIs, 3 classes: RoIs 0-2 positive (classes 2, 0, 1; class 2 is the last real class),
    3-4 background (label 3), 5 ignored (label weight 0); class-specific deltas."""
    cls_score, bbox_pred, rois, labels, label_weights, gt = hand_made_rois(NUM_CLASSES, seed, score_scale=2.0)
    bbox_weights = torch.zeros(6, 4)
    bbox_weights[:3] = 1.0
    return cls_score, bbox_pred, rois, labels, label_weights, gt, bbox_weights


def hand_focal(logits, targets, gamma=2.0, alpha=0.25):
    """Sigmoid Focal Loss of each logit (Lin et al., Eq. 5 with alpha_t), written out."""
    p = logits.sigmoid()
    pos = -alpha * (1 - p) ** gamma * torch.log(p)
    neg = -(1 - alpha) * p**gamma * torch.log(1 - p)
    return targets * pos + (1 - targets) * neg


# ---------------------------------------------------------------------------- box head
def test_focal_loss_treats_background_label_as_all_negative():
    """mmdet's FocalLoss with integer labels: label C (background) has an all-zero one-hot row."""
    logits = torch.tensor([[0.3, -1.2, 2.0], [1.5, 0.1, -0.4]])
    loss = MODELS.build(FOCAL)(logits, torch.tensor([NUM_CLASSES, 2]), reduction_override="none")
    targets = torch.tensor([[0.0, 0, 0], [0, 0, 1]])
    torch.testing.assert_close(loss, hand_focal(logits, targets))


def test_head_loss_equals_hand_computation():
    """loss_cls = sum of Focal Loss over the (RoI, class) logits of RoIs with weight > 0 /
    #positives; loss_bbox = 2 x sum of GIoU Loss of the positives' decoded gt-class boxes /
    #positives (RS paper App. C.5)."""
    head = sigmoid_head()
    cls_score, bbox_pred, rois, labels, label_weights, gt, bbox_weights = fixed_batch()
    losses = head.loss(cls_score, bbox_pred, rois, labels, label_weights, gt, bbox_weights)

    targets = torch.zeros(6, NUM_CLASSES)
    targets[torch.arange(3), labels[:3]] = 1.0
    expected_cls = (hand_focal(cls_score, targets) * label_weights[:, None]).sum() / 3
    # the same with mmdet's reference implementation on the one-hot targets
    mmdet_cls = py_sigmoid_focal_loss(cls_score, targets, label_weights[:, None].expand(-1, 3), reduction="sum") / 3
    torch.testing.assert_close(expected_cls, mmdet_cls)
    torch.testing.assert_close(losses["loss_cls"], expected_cls)

    pos = torch.arange(3)
    deltas = bbox_pred.view(6, NUM_CLASSES, 4)[pos, labels[pos]]
    boxes = DeltaXYWHBBoxCoder(target_stds=STDS).decode(rois[pos, 1:], deltas)
    giou = 1 - bbox_overlaps(boxes, gt[pos], mode="giou", is_aligned=True)
    torch.testing.assert_close(losses["loss_bbox"], 2.0 * giou.sum() / 3)
    assert losses["neg_per_pos_rcnn_instances"].item() == pytest.approx(2 / 3)
    assert losses["neg_per_pos_rcnn_tasks"].item() == pytest.approx((2 * 3 + 3 * 2) / 3)
    assert not losses["neg_per_pos_rcnn_tasks"].requires_grad

    total = losses["loss_cls"] + losses["loss_bbox"]
    total.backward()
    assert cls_score.grad[5].abs().sum() == 0  # the ignored RoI
    assert (cls_score.grad[:5].abs().sum(dim=1) > 0).all()
    # only the gt-class deltas of positives receive box gradients
    grad = bbox_pred.grad.view(6, NUM_CLASSES, 4)
    assert (grad[pos, labels[pos]].abs().sum(dim=1) > 0).all()
    others = torch.ones(6, NUM_CLASSES, dtype=torch.bool)
    others[pos, labels[pos]] = False
    assert grad[others].abs().sum() == 0


def test_head_class_agnostic_regression():
    head = sigmoid_head(reg_class_agnostic=True)
    cls_score, bbox_pred, rois, labels, label_weights, gt, bbox_weights = fixed_batch()
    agnostic = bbox_pred[:, :4].detach().requires_grad_()
    losses = head.loss(cls_score, agnostic, rois, labels, label_weights, gt, bbox_weights)
    boxes = DeltaXYWHBBoxCoder(target_stds=STDS).decode(rois[:3, 1:], agnostic[:3])
    giou = 1 - bbox_overlaps(boxes, gt[:3], mode="giou", is_aligned=True)
    torch.testing.assert_close(losses["loss_bbox"], 2.0 * giou.sum() / 3)


def test_head_without_positives():
    """All RoIs background: Focal Loss summed over the weighted logits (divided by 1), a zero box
    loss that still reaches bbox_pred's graph, no imbalance logs (ratio undefined)."""
    head = sigmoid_head()
    cls_score, bbox_pred, rois, _, label_weights, gt, bbox_weights = fixed_batch(seed=1)
    labels = torch.full((6,), NUM_CLASSES)
    losses = head.loss(cls_score, bbox_pred, rois, labels, label_weights, gt, bbox_weights)
    expected = (hand_focal(cls_score, torch.zeros(6, NUM_CLASSES)) * label_weights[:, None]).sum()
    torch.testing.assert_close(losses["loss_cls"], expected)
    assert losses["loss_bbox"].item() == 0.0 and losses["loss_bbox"].requires_grad
    assert not any(k.startswith("neg_per_pos") for k in losses)


def test_head_forward_and_loss_and_target_backward():
    """forward gives num_classes logits (no background column); mmdet's loss_and_target runs
    the head's loss on a SamplingResult and gradients reach every layer."""
    from mmdet.models.task_modules import AssignResult
    from mmdet.models.task_modules.samplers import SamplingResult

    torch.manual_seed(0)
    head = sigmoid_head()
    feats = torch.randn(5, 2, 2, 2)
    cls_score, bbox_pred = head(feats)
    assert cls_score.shape == (5, NUM_CLASSES) and bbox_pred.shape == (5, 4 * NUM_CLASSES)
    priors = torch.tensor([[10.0, 10, 50, 60], [30, 20, 90, 70], [60, 60, 100, 90], [0, 0, 20, 20], [5, 5, 30, 30]])
    gt = torch.tensor([[12.0, 8, 55, 62], [28, 22, 88, 66]])
    assign = AssignResult(2, torch.tensor([1, 2, 0, 0, 0]), torch.ones(5), labels=torch.tensor([2, 0, -1, -1, -1]))
    result = SamplingResult(torch.arange(2), torch.arange(2, 5), priors, gt, assign, torch.zeros(5, dtype=torch.uint8))
    rois = torch.cat([torch.zeros(5, 1), priors], dim=1)
    cfg = ConfigDict(pos_weight=-1)
    out = head.loss_and_target(cls_score, bbox_pred, rois, [result], cfg)
    labels = out["bbox_targets"][0]
    assert labels.tolist() == [2, 0, NUM_CLASSES, NUM_CLASSES, NUM_CLASSES]
    losses = out["loss_bbox"]
    assert set(k for k in losses if k.startswith("loss")) == {"loss_cls", "loss_bbox"}
    (losses["loss_cls"] + losses["loss_bbox"]).backward()
    assert_gradients_reach(head.fc_cls, head.fc_reg, head.shared_fcs[0], head.shared_fcs[1], context="sigmoid head: ")


def test_prediction_keeps_the_last_class():
    """Sigmoid scores with a zero background column: a RoI whose best class is the last real
    class (C - 1) is detected as C - 1 with score sigmoid(logit), and every (RoI, class) above
    score_thr enters class-wise NMS (a softmax over C + 1 columns would give other scores)."""
    head = sigmoid_head()
    rois = torch.tensor([[0, 10.0, 10, 40, 40], [0, 60, 60, 100, 100]])
    logits = torch.tensor([[-2.0, -3.0, 3.0], [1.0, -4.0, 0.2]])
    deltas = torch.zeros(2, 4 * NUM_CLASSES)
    cfg = ConfigDict(score_thr=0.3, nms=dict(type="nms", iou_threshold=0.5), max_per_img=100)
    meta = dict(img_shape=(128, 128), scale_factor=(1.0, 1.0))
    result = head.predict_by_feat((rois,), (logits,), (deltas,), [meta], rcnn_test_cfg=cfg)[0]
    got = sorted(zip(result.labels.tolist(), result.scores.tolist()))
    probs = logits.sigmoid()
    assert [label for label, _ in got] == [0, 2, 2]
    torch.testing.assert_close(torch.tensor([s for _, s in got]), torch.stack([probs[1, 0], probs[1, 2], probs[0, 2]]))
    top = result.scores.argmax()
    assert result.labels[top].item() == NUM_CLASSES - 1
    torch.testing.assert_close(result.bboxes[top], rois[0, 1:])


def test_bias_prior_and_bad_config():
    head = sigmoid_head()
    assert head.fc_cls.out_features == NUM_CLASSES
    torch.testing.assert_close(head.fc_cls.bias, torch.full((NUM_CLASSES,), PRIOR_BIAS))
    torch.testing.assert_close(head.fc_cls.bias.sigmoid(), torch.full((NUM_CLASSES,), 0.01))
    assert 0 < head.fc_cls.weight.std() < 0.05  # N(0, 0.01)
    assert sigmoid_head(cls_prior_prob=0.5).fc_cls.bias.abs().max() == 0
    assert sigmoid_head().loss_cls.gamma == 2.0 and sigmoid_head().loss_bbox.loss_weight == 2.0
    with pytest.raises(ValueError, match="use_sigmoid"):
        sigmoid_head(loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False))
    with pytest.raises(ValueError, match="cls_prior_prob"):
        sigmoid_head(cls_prior_prob=1.0)
    with pytest.raises(ValueError, match="num_classes"):
        head.loss(torch.zeros(6, NUM_CLASSES + 1), *fixed_batch()[1:])


# ---------------------------------------------------------------------------- configs
def load(stem) -> Config:
    return Config.fromfile(str(ROOT / CONFIG.format(stem)))


def build_meta(cfg):
    with torch.device("meta"):
        return MODELS.build(copy.deepcopy(cfg.model))


def test_registry_points_at_the_configs():
    import yaml

    registry = yaml.safe_load((ROOT / "configs" / "experiments.yaml").read_text())
    cells = {"random": "random", "none": "none"}
    for stem, (rpn, rcnn) in FL_IDS.items():
        entry = registry[stem]
        assert entry["config"] == CONFIG.format(stem) and "missing" not in entry
        assert entry["feeds"] == [f"rs_paper/A.18/fl_{cells[rpn]}_{cells[rcnn]}"]
        assert (entry["gpus"], entry["images_per_gpu"]) == (4, 4)


@pytest.mark.parametrize("stem", sorted(FL_IDS))
def test_config_settings_and_paper_scale_build(stem):
    """App. C.5's settings, the samplers of each Table A.18 row, and the model at paper scale
    (80 sigmoid classifiers, no background column; meta device: nothing allocated)."""
    rpn_sampler, rcnn_sampler = FL_IDS[stem]
    cfg = load(stem)
    model_cfg = cfg.model
    assert cfg.custom_imports.imports == ["rankrepro.models", "rankrepro.evaluation.metrics"]
    assert plain(model_cfg.rpn_head.loss_cls) == FOCAL
    assert plain(model_cfg.rpn_head.init_cfg.override) == dict(type="Normal", name="rpn_cls", std=0.01, bias_prob=0.01)
    assert model_cfg.rpn_head.loss_bbox.type == "L1Loss"  # the baseline's RPN box loss
    head = model_cfg.roi_head.bbox_head
    assert head.type == "SigmoidShared2FCBBoxHead" and plain(head.loss_cls) == FOCAL
    assert plain(head.loss_bbox) == dict(type="GIoULoss", loss_weight=2.0)
    assert head.reg_decoded_bbox is True and head.cls_prior_prob == 0.01
    assert model_cfg.roi_head.type == "StandardRoIHead"
    assert plain(model_cfg.train_cfg.rpn.sampler) == (dict(type="PseudoSampler") if rpn_sampler == "none" else RANDOM_RPN)
    assert plain(model_cfg.train_cfg.rcnn.sampler) == (NO_SAMPLER_RCNN if rcnn_sampler == "none" else RANDOM_RCNN)
    assert cfg.optim_wrapper.optimizer.lr == 0.01 and cfg.optim_wrapper.optimizer.type == "SGD"
    assert cfg.train_dataloader.batch_size == 4 and cfg.auto_scale_lr.base_batch_size == 16
    assert cfg.train_cfg.max_epochs == 12 and cfg.val_evaluator.type == "CocoOLRPMetric"
    assert model_cfg.test_cfg.rcnn.score_thr == 0.05
    assert cfg.optim_wrapper.get("clip_grad") is None  # paper scale: no clipping
    smoke = smoke_config(load(stem), "/tmp/unused_smoke_data_root")
    assert plain(smoke.optim_wrapper.clip_grad) == dict(max_norm=35, norm_type=2)  # smoke variant only
    model = build_meta(cfg)
    assert type(model.rpn_head).__name__ == "RPNHead" and model.rpn_head.cls_out_channels == 1
    assert type(model.roi_head.bbox_head) is SigmoidShared2FCBBoxHead
    assert model.roi_head.bbox_head.fc_cls.out_features == 80 and model.roi_head.bbox_head.num_classes == 80
    assert model.backbone.depth == 50 and model.neck.out_channels == 256


def smoke_model(stem, tmp_path):
    cfg = smoke_config(load(stem), tmp_path)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.mark.parametrize("rpn_sampler", ["none", "random"])
def test_rpn_focal_loss_and_samplers(rpn_sampler, tmp_path):
    """mmdet's RPNHead with Focal Loss: the prior bias on rpn_cls, and loss_rpn_cls = sum of
    Focal Loss over the anchors with label weight > 0 / avg_factor, where avg_factor is the
    number of positive anchors without a sampler (PseudoSampler) and the number of sampled
    anchors with the RandomSampler (mmdet's AnchorHead)."""
    stem = "fl_faster-rcnn_r50_fpn_giou_rpn-{}_rcnn-random_1x_coco".format(rpn_sampler)
    model = smoke_model(stem, tmp_path)
    torch.testing.assert_close(model.rpn_head.rpn_cls.bias, torch.full_like(model.rpn_head.rpn_cls.bias, PRIOR_BIAS))
    data = random_batch(model, [3, 2])
    with recorded(model.rpn_head, "loss_by_feat_single") as calls:
        losses = model.loss(data["inputs"], data["data_samples"])
    expected, positives, weighted = 0.0, 0, 0
    for args, kwargs, _ in calls:
        cls_score, _, _, labels, label_weights = args[:5]
        logits = cls_score.permute(0, 2, 3, 1).reshape(-1, 1)
        labels, label_weights = labels.reshape(-1), label_weights.reshape(-1)
        targets = (labels == 0).float()[:, None]
        expected = expected + (hand_focal(logits, targets) * label_weights[:, None]).sum()
        positives += int(((labels == 0) & (label_weights > 0)).sum())
        weighted += int((label_weights > 0).sum())
        avg_factor = kwargs["avg_factor"]
    assert positives > 0
    assert avg_factor == (positives if rpn_sampler == "none" else weighted)
    if rpn_sampler == "random":
        assert weighted == 256 * 2  # 256 anchors an image, 2 images
    else:
        assert weighted > 10 * 256
    rpn_cls = sum(losses["loss_rpn_cls"])
    torch.testing.assert_close(rpn_cls, expected / avg_factor)
    for key in ("loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox"):
        value = sum(losses[key]) if isinstance(losses[key], list) else losses[key]
        assert torch.isfinite(value) and value > 0, key
    total_loss(losses).backward()
    assert_gradients_reach(model.rpn_head.rpn_cls, model.rpn_head.rpn_reg, model.roi_head.bbox_head.fc_cls,
                           model.roi_head.bbox_head.fc_reg, context=f"{stem}: ")


def test_detector_predicts_with_sigmoid_scores(tmp_path):
    model = smoke_model("fl_faster-rcnn_r50_fpn_giou_rpn-none_rcnn-none_1x_coco", tmp_path)
    head = model.roi_head.bbox_head
    assert head.fc_cls.out_features == len(CLASSES)
    torch.testing.assert_close(head.fc_cls.bias, torch.full_like(head.fc_cls.bias, PRIOR_BIAS))
    model.eval()
    # the untrained sigmoids sit at the 0.01 prior, under the config's score_thr of 0.05
    model.roi_head.test_cfg.score_thr = 0.001
    model.roi_head.test_cfg.max_per_img = 100000
    with torch.no_grad():
        data = random_batch(model, [2, 1], training=False)
        x = model.extract_feat(data["inputs"])
        proposals = model.rpn_head.predict(x, data["data_samples"], rescale=False)
        with recorded(head, "_predict_by_feat_single") as calls:
            results = model.roi_head.predict(x, proposals, data["data_samples"], rescale=False)
    instances = results[0]
    assert len(instances) > 0
    # untrained: every sigmoid near the 0.01 prior (a softmax over C + 1 columns would give ~1 / (C + 1))
    assert (instances.scores < 0.05).all() and (instances.scores > 0.001).all()
    assert set(instances.labels.tolist()) == set(range(len(CLASSES)))  # the last class included
    cls_score = calls[0][1]["cls_score"]
    assert cls_score.shape[1] == len(CLASSES)


# ---------------------------------------------------------------------------- smoke runs
@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from rankrepro.data.synthetic import make_synthetic_coco

    root = tmp_path_factory.mktemp("synthetic_fl_rcnn")
    make_synthetic_coco(root, num_train=8, num_val=8)
    return root


@pytest.mark.parametrize(
    "stem",
    [s if s.endswith("rpn-none_rcnn-none_1x_coco") else pytest.param(s, marks=pytest.mark.slow) for s in sorted(FL_IDS)],
)
def test_smoke_trains_and_evaluates(stem, data_root, tmp_path):
    """Two training iterations and an evaluation of the smoke variant on the synthetic set."""
    from rankrepro import runner

    config = CONFIG.format(stem)
    runner.train(config, tmp_path, smoke=True, data_root=data_root, max_iters=2)
    out = tmp_path / "metrics.json"
    metrics = runner.test(config, tmp_path / "iter_2.pth", tmp_path / "test", out=out, smoke=True, data_root=data_root)
    assert 0.0 <= metrics["coco/bbox_mAP"] <= 1.0 and 0.0 <= metrics["coco/bbox_oLRP"] <= 1.0
    assert json.loads(out.read_text())["metrics"]["coco/bbox_oLRP"] == pytest.approx(metrics["coco/bbox_oLRP"])
