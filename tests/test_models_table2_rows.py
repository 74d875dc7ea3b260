"""RS paper Table 2's remaining rows: AP Loss with the auxiliary head (ATSS centerness, PAA
IoU branch) and PAA trained with Focal Loss / QFL without its IoU head."""
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("mmdet")
pytest.importorskip("sklearn")  # PAA's GMM
from mmengine.config import Config  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from model_cases import assert_gradients_reach, build_smoke_model, random_batch, recorded_calls, total_loss  # noqa: E402

import rankrepro.models  # noqa: E402,F401
from rankrepro.smoke import smoke_config  # noqa: E402

register_all_modules()
AP_ATSS_AUX = "configs/atss/ap_atss_centerness_r50_fpn_1x_coco.py"
AP_PAA_AUX = "configs/paa/ap_paa_iou_head_r50_fpn_1x_coco.py"
FL_PAA = "configs/paa/fl_paa_no_iou_head_r50_fpn_1x_coco.py"
QFL_PAA = "configs/paa/qfl_paa_r50_fpn_1x_coco.py"


@pytest.mark.parametrize(("config", "aux_name"), [(AP_ATSS_AUX, "loss_centerness"), (AP_PAA_AUX, "loss_iou")])
def test_aux_branch_is_trained(config, aux_name, tmp_path):
    model = build_smoke_model(config, tmp_path)
    head = model.bbox_head
    data = random_batch(model, [3, 2])
    with recorded_calls(head, "aux_loss") as calls:
        losses = model.loss(data["inputs"], data["data_samples"])
    assert set(losses) == {"loss_ap", "loss_bbox", aux_name}
    total = total_loss(losses)
    assert torch.isfinite(total)
    total.backward()
    assert_gradients_reach(head.atss_cls, head.atss_reg, head.atss_centerness)
    # the loss is mmdet's: BCE of the aux logits of the positives to their targets
    (aux_logits, pos_anchors, gt_boxes, ious), loss = calls[0]
    if aux_name == "loss_centerness":  # centerness of the anchor centre in its gt box, mean over positives
        cx, cy = (pos_anchors[:, 0] + pos_anchors[:, 2]) / 2, (pos_anchors[:, 1] + pos_anchors[:, 3]) / 2
        lr = torch.stack([cx - gt_boxes[:, 0], gt_boxes[:, 2] - cx], 1)
        tb = torch.stack([cy - gt_boxes[:, 1], gt_boxes[:, 3] - cy], 1)
        targets = torch.sqrt(lr.min(1).values / lr.max(1).values * tb.min(1).values / tb.max(1).values)
        expected = F.binary_cross_entropy_with_logits(aux_logits, targets)
    else:  # IoU of the predicted box, weight 0.5, averaged by the IoU sum
        targets = ious.clamp(min=1e-12)
        expected = 0.5 * F.binary_cross_entropy_with_logits(aux_logits, targets, reduction="sum") / targets.sum()
    assert aux_logits.numel() > 0 and (targets > 0).all() and (targets <= 1).all()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("config", [AP_ATSS_AUX, AP_PAA_AUX])
def test_aux_branch_without_ground_truth(config, tmp_path):
    model = build_smoke_model(config, tmp_path)
    data = random_batch(model, [0, 0])
    losses = model.loss(data["inputs"], data["data_samples"])
    total = total_loss(losses)
    assert torch.isfinite(total) and total.item() == 0.0
    total.backward()


@pytest.mark.parametrize(("config", "factor"), [(AP_ATSS_AUX, 0.5), (AP_PAA_AUX, 0.5**0.5)])
def test_aux_branch_scales_the_test_scores(config, factor, tmp_path):
    """ATSS multiplies by sigmoid(centerness), PAA takes sqrt(probability x sigmoid(IoU))."""
    model = build_smoke_model(config, tmp_path)
    model.eval()
    head = model.bbox_head
    head.test_cfg.update(score_thr=0.0, max_per_img=5)
    if hasattr(head, "with_score_voting"):
        head.with_score_voting = False  # score voting averages boxes, not scores; keep it simple
    data = random_batch(model, [2, 1], training=False)
    best = {}
    for logit in (0.0, 30.0):  # sigmoid 0.5 and 1
        torch.nn.init.zeros_(head.atss_centerness.weight)
        torch.nn.init.constant_(head.atss_centerness.bias, logit)
        with torch.no_grad():
            results = model.predict(data["inputs"], data["data_samples"])
        best[logit] = results[0].pred_instances.scores.max().item()
    assert best[0.0] == pytest.approx(factor * best[30.0], rel=1e-5)


def _ranking_inputs(model, data):
    with recorded_calls(model.bbox_head, "ranking_losses") as calls:
        losses = model.loss(data["inputs"], data["data_samples"])
    return calls[0][0], losses


def test_fl_and_qfl_paa_train_their_classifier_and_keep_paa_assignment(tmp_path):
    fl = build_smoke_model(FL_PAA, tmp_path)
    qfl = build_smoke_model(QFL_PAA, tmp_path)
    qfl.load_state_dict(fl.state_dict())  # same network: the same PAA split
    data = random_batch(fl, [4, 3], seed=4)
    fl_inputs, fl_losses = _ranking_inputs(fl, data)
    qfl_inputs, qfl_losses = _ranking_inputs(qfl, data)
    assert set(fl_losses) == set(qfl_losses) == {"loss_cls", "loss_bbox"}
    labels, num_classes = fl_inputs[1], fl.bbox_head.num_classes
    assert torch.equal(labels, qfl_inputs[1]) and ((labels >= 0) & (labels < num_classes)).any()
    assert type(fl.bbox_head.loss_assign).__name__ == type(qfl.bbox_head.loss_assign).__name__ == "FocalLoss"
    assert type(qfl.bbox_head.loss_cls).__name__ == "QualityFocalLoss"
    assert not torch.isclose(fl_losses["loss_cls"], qfl_losses["loss_cls"])
    # box loss: GIoU Loss of weight 2, a plain mean over the positives
    assert fl_losses["loss_bbox"].item() == pytest.approx(qfl_losses["loss_bbox"].item(), rel=1e-6)
    assert 0 < fl_losses["loss_bbox"].item() < 4
    for model, losses in ((fl, fl_losses), (qfl, qfl_losses)):
        total_loss(losses).backward()
        head = model.bbox_head
        assert_gradients_reach(head.atss_cls, head.atss_reg)
        assert not hasattr(head, "atss_centerness")


def test_paa_scoring_must_be_focal_loss(tmp_path):
    cfg = smoke_config(Config.fromfile(QFL_PAA), tmp_path)
    cfg.model.bbox_head.pop("loss_assign")  # QFL would then score PAA's candidates
    with pytest.raises(ValueError, match="loss_assign=FocalLoss"):
        MODELS.build(cfg.model)


def test_paper_scale_configs_build():
    for path in (AP_ATSS_AUX, AP_PAA_AUX, FL_PAA, QFL_PAA):
        cfg = Config.fromfile(path)
        for module in cfg.custom_imports.imports:
            __import__(module)
        head = MODELS.build(cfg.model).bbox_head
        assert head.num_classes == 80 and cfg.val_evaluator.type == "CocoOLRPMetric"
        assert head.aux_head == (path in (AP_ATSS_AUX, AP_PAA_AUX))
    fl = Config.fromfile(FL_PAA)
    assert fl.optim_wrapper.optimizer.lr == 0.01 and fl.model.bbox_head.anchor_generator.octave_base_scale == 8
    assert fl.model.test_cfg.nms.iou_threshold == 0.6 and fl.model.bbox_head.loss_bbox.loss_weight == 2.0
