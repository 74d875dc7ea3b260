"""The PAA heads of the plugin: one forward/backward per loss, PAA's labelling, prediction, a smoke run."""
import math

import pytest
import torch

pytest.importorskip("mmdet")
pytest.importorskip("sklearn")  # PAA's GMM
from mmengine.config import Config  # noqa: E402
from mmdet.models.dense_heads import PAAHead  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from model_cases import assert_gradients_reach, build_smoke_model, config_path, random_batch, total_loss  # noqa: E402

import rankrepro.models  # noqa: E402,F401
import rankrepro.models.dense_heads.rank_based_paa_head  # noqa: E402,F401  (registers RankBasedPAAHead)
from rankrepro.data.synthetic import make_synthetic_coco  # noqa: E402

register_all_modules()
PAA_CONFIGS = ["rs", "brs", "ap", "bap", "alrp"]


def _config_path(name):
    return config_path("paa", name)


@pytest.mark.parametrize("name", PAA_CONFIGS)
def test_forward_backward_reaches_classifier_and_box_branch(name, tmp_path):
    model = build_smoke_model(_config_path(name), tmp_path)
    data = random_batch(model, [3, 2])
    losses = model.loss(data["inputs"], data["data_samples"])
    assert "loss_bbox" in losses and "loss_iou" not in losses
    assert all(torch.isfinite(v) for v in losses.values())
    total = total_loss(losses)
    assert total.item() > 0
    total.backward()
    head = model.bbox_head
    assert_gradients_reach(head.atss_cls, head.atss_reg, context=f"{name}: ")
    assert not hasattr(head, "atss_centerness") and not hasattr(head, "loss_centerness")


@pytest.mark.parametrize("name", ["rs", "alrp"])
def test_batch_without_ground_truth_trains(name, tmp_path):
    model = build_smoke_model(_config_path(name), tmp_path)
    data = random_batch(model, [0, 0])
    losses = model.loss(data["inputs"], data["data_samples"])
    total = total_loss(losses)
    assert torch.isfinite(total) and total.item() == 0.0  # no positives, no error to distribute
    total.backward()  # still connected to the graph


def test_task_balancing_of_the_configs(tmp_path):
    """RS: box loss scaled to the value of L_RS; AP (official Bucketed head): lambda = 1."""
    model = build_smoke_model(_config_path("rs"), tmp_path)
    data = random_batch(model, [4, 4])
    losses = model.loss(data["inputs"], data["data_samples"])
    assert losses["loss_bbox"].item() == pytest.approx((losses["loss_rank"] + losses["loss_sort"]).item(), rel=1e-5)
    ap = build_smoke_model(_config_path("ap"), tmp_path).bbox_head
    assert ap.task_balance == 1.0 and ap.box_weighting == "score" and ap.loss_rank.delta == 0.5


def _assignment_inputs(model, num_items):
    """PAA's candidates and their scores for one demo batch, as ``loss_by_feat`` makes them."""
    from mmdet.models.utils import levels_to_images, multi_apply

    head = model.bbox_head
    data = random_batch(model, num_items, seed=3)
    with torch.no_grad():
        cls_scores, bbox_preds = head(model.extract_feat(data["inputs"]))
        metas = [s.metainfo for s in data["data_samples"]]
        gts = [s.gt_instances for s in data["data_samples"]]
        anchors, valid = head.get_anchors([c.shape[-2:] for c in cls_scores], metas, device="cpu")
        labels, label_weights, bbox_targets, bbox_weights, pos_inds, pos_gt_inds = head.get_targets(anchors, valid, gts, metas)
        logits = [x.reshape(-1, head.cls_out_channels) for x in levels_to_images(cls_scores)]
        deltas = [x.reshape(-1, 4) for x in levels_to_images(bbox_preds)]
        (scores,) = multi_apply(head.get_pos_loss, anchors, logits, deltas, labels, label_weights, bbox_targets, bbox_weights, pos_inds)
    return list(zip(scores, labels, label_weights, bbox_weights, pos_inds, pos_gt_inds, anchors))


def test_paa_split_matches_mmdet_paa_head(tmp_path):
    """Same GMM settings: the positives and negatives of mmdet's ``PAAHead.paa_reassign``."""
    model = build_smoke_model(_config_path("rs"), tmp_path, gmm_reg_covar=1e-6)  # sklearn's default, as mmdet
    head = model.bbox_head
    candidates = kept = 0
    for args in _assignment_inputs(model, [6, 4]):
        ours = head.paa_reassign(*args)
        reference = PAAHead.paa_reassign(head, *args)
        assert torch.equal(ours[0], reference[0]) and torch.equal(ours[1], reference[1])
        assert torch.equal(ours[2], reference[2]) and ours[3] == reference[3]
        assert torch.equal(ours[1], args[2])  # the separation ignores no anchor
        candidates += args[4].numel()
        kept += ours[3]
    assert 0 < kept < candidates  # PAA keeps some candidates and turns the others into negatives


def test_paa_scoring_matches_mmdet_paa_head(tmp_path):
    """PAA's candidate score (Focal + GIoU of the current prediction) is mmdet's ``get_pos_loss``."""
    from mmdet.models.utils import levels_to_images

    model = build_smoke_model(_config_path("rs"), tmp_path)
    head = model.bbox_head
    data = random_batch(model, [4, 3], seed=6)
    with torch.no_grad():
        cls_scores, bbox_preds = head(model.extract_feat(data["inputs"]))
        metas = [s.metainfo for s in data["data_samples"]]
        anchors, valid = head.get_anchors([c.shape[-2:] for c in cls_scores], metas, device="cpu")
        targets = head.get_targets(anchors, valid, [s.gt_instances for s in data["data_samples"]], metas)
        logits = levels_to_images(cls_scores)
        deltas = levels_to_images(bbox_preds)
        checked = 0
        for idx in range(len(metas)):
            args = (anchors[idx], logits[idx].reshape(-1, head.cls_out_channels), deltas[idx].reshape(-1, 4))
            args += tuple(t[idx] for t in targets[:5])
            (ours,), (reference,) = head.get_pos_loss(*args), PAAHead.get_pos_loss(head, *args)
            torch.testing.assert_close(ours, reference)
            checked += ours.numel()
    assert checked > 0


def test_prediction_without_iou_branch(tmp_path):
    """Test time: class probabilities alone, NMS and score voting; no score factors."""
    model = build_smoke_model(_config_path("rs"), tmp_path)
    model.eval()
    data = random_batch(model, [2, 1], training=False)
    with torch.no_grad():
        cls_scores, _ = model.bbox_head(model.extract_feat(data["inputs"]))
        best = max(s[0].sigmoid().max() for s in cls_scores).item()
        # keep a few boxes of the untrained head (its scores are all close to the 0.01 prior)
        model.bbox_head.test_cfg.update(score_thr=best * 0.999, max_per_img=10)
        results = model.predict(data["inputs"], data["data_samples"])
    det = results[0].pred_instances
    assert 0 < len(det.scores) <= 10 and det.bboxes.shape == (len(det.scores), 4)
    assert len(det.labels) == len(det.scores) and torch.isfinite(det.bboxes).all()
    assert det.scores.max().item() == pytest.approx(best, rel=1e-6)  # the probability itself, no IoU factor
    for sample in results:  # images with nothing above the threshold give empty results
        assert sample.pred_instances.bboxes.shape[1] == 4


def test_alrp_self_balancing_weight_is_applied_and_saved(tmp_path):
    model = build_smoke_model(_config_path("alrp"), tmp_path)
    head = model.bbox_head
    assert head.sb_weight.period == 10 and head.sb_weight.value == 50.0
    data = random_batch(model, [3, 3])
    for _ in range(10):  # one full period: the weight becomes (cls + loc) / loc
        losses = model.loss(data["inputs"], data["data_samples"])
    assert head.sb_weight.value != 50.0 and math.isfinite(head.sb_weight.value)
    fresh = build_smoke_model(_config_path("alrp"), tmp_path)
    fresh.load_state_dict(model.state_dict())
    assert fresh.bbox_head.sb_weight.state_dict() == head.sb_weight.state_dict()
    assert losses["loss_bbox"].item() > 0


def test_paper_scale_configs_build():
    for name in PAA_CONFIGS + ["fl_paa"]:
        cfg = Config.fromfile(_config_path(name))
        for module in cfg.get("custom_imports", {}).get("imports", []):
            __import__(module)
        model = MODELS.build(cfg.model)
        head = model.bbox_head
        assert model.backbone.depth == 50 and head.num_classes == 80
        assert cfg.val_evaluator.type == "CocoOLRPMetric"
        if name == "fl_paa":
            assert type(head) is PAAHead and cfg.optim_wrapper.optimizer.lr == 0.01
            continue
        assert type(head).__name__ == "RankBasedPAAHead" and head.topk == 9 and head.with_score_voting
        assert head.prior_generator.octave_base_scale == 4 and head.prior_generator.scales_per_octave == 3
        assert cfg.train_dataloader.batch_size == 4 and cfg.auto_scale_lr.base_batch_size == 16
        assert cfg.optim_wrapper.optimizer.lr == (0.005 if name == "alrp" else 0.008)


def test_smoke_train_and_test_rs_paa(tmp_path):
    from rankrepro.runner import test, train

    data_root = tmp_path / "data"
    make_synthetic_coco(data_root, num_train=16, num_val=8)
    work_dir = tmp_path / "work"
    kwargs = dict(smoke=True, data_root=data_root, max_iters=4)
    train(_config_path("rs"), work_dir, **kwargs)
    checkpoint = work_dir / "iter_4.pth"
    assert checkpoint.exists()
    metrics = test(_config_path("rs"), checkpoint, work_dir, **kwargs)
    assert "coco/bbox_mAP" in metrics and "coco/bbox_oLRP" in metrics
