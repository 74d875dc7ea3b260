"""Co-DETR's auxiliary heads (ATSS, R-CNN) and their ranking versions: ``pos_coords`` equals
the assigner's / sampler's positives, losses, gradients, loss weights, empty images."""
import pytest
import torch

pytest.importorskip("mmdet")
from mmengine.config import ConfigDict  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402
from mmdet.registry import MODELS, TASK_UTILS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.structures.bbox import bbox_overlaps  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from model_cases import assert_gradients_reach, total_loss  # noqa: E402

import rankrepro.models  # noqa: E402,F401
from rankrepro.models.co_positives import positive_coords, scale_losses  # noqa: E402

register_all_modules()
NUM_CLASSES, CHANNELS, SIZE = 4, 32, 128
STRIDES = [8, 16, 32, 64, 128]
ATSS_TRAIN = dict(assigner=dict(type="ATSSAssigner", topk=9), allowed_border=-1, pos_weight=-1, debug=False)


def _atss_cfg(kind):
    cfg = dict(
        num_classes=NUM_CLASSES,
        in_channels=CHANNELS,
        stacked_convs=1,
        feat_channels=CHANNELS,
        anchor_generator=dict(type="AnchorGenerator", ratios=[1.0], octave_base_scale=8, scales_per_octave=1, strides=STRIDES),
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2]),
        train_cfg=ATSS_TRAIN,
    )
    if kind == "base":  # Co-DETR's ATSS losses (weights 12 = num_dec_layer x lambda_2)
        cfg.update(
            type="CoATSSHead",
            loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=12.0),
            loss_bbox=dict(type="GIoULoss", loss_weight=24.0),
            loss_centerness=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=12.0),
        )
    else:
        cfg.update(
            type="RankBasedCoATSSHead",
            loss_bbox=dict(type="GIoULoss", reduction="none"),
            loss_rank=dict(type="BucketedRankSortLoss", delta=0.5),
        )
    return ConfigDict(cfg)


def _samples(num_gts, seed=0):
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for n in num_gts:
        xy = torch.rand(n, 2, generator=gen) * SIZE * 0.6
        wh = 12 + torch.rand(n, 2, generator=gen) * SIZE * 0.35
        sample = DetDataSample(metainfo=dict(img_shape=(SIZE, SIZE), pad_shape=(SIZE, SIZE), batch_input_shape=(SIZE, SIZE), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, (xy + wh).clamp(max=SIZE)], 1), labels=torch.randint(0, NUM_CLASSES, (n,), generator=gen)
        )
        sample.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        samples.append(sample)
    return samples


def _features(batch, levels=5, seed=1):
    torch.manual_seed(seed)
    return [torch.randn(batch, CHANNELS, SIZE // s, SIZE // s, requires_grad=True) for s in STRIDES[:levels]]


def _build(cfg, seed=0):
    torch.manual_seed(seed)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


@pytest.mark.parametrize("kind", ["base", "rank"])
def test_atss_pos_coords_are_the_assigners_positives(kind):
    head = _build(_atss_cfg(kind))
    samples = _samples([3, 1])
    feats = _features(2)
    losses = head.loss(feats, samples)
    coords, labels, targets, name = losses.pop("pos_coords")
    assert name == "atss" and len(coords) == len(labels) == len(targets) == 2
    anchors = head.prior_generator.grid_priors([f.shape[-2:] for f in feats], device="cpu")
    level_sizes = [a.shape[0] for a in anchors]
    all_anchors = torch.cat(anchors)
    assigner = TASK_UTILS.build(ATSS_TRAIN["assigner"])
    for i, sample in enumerate(samples):
        assert coords[i].shape == (sum(level_sizes), 4) and not coords[i].requires_grad
        torch.testing.assert_close(coords[i], all_anchors)
        result = assigner.assign(InstanceData(priors=all_anchors), level_sizes, sample.gt_instances)
        pos = result.gt_inds > 0
        assert pos.any()
        expected = torch.full_like(result.gt_inds, NUM_CLASSES)
        expected[pos] = sample.gt_instances.labels[result.gt_inds[pos] - 1]
        torch.testing.assert_close(labels[i], expected)
        torch.testing.assert_close(targets[i][pos], sample.gt_instances.bboxes[result.gt_inds[pos] - 1])
    total = total_loss(losses)
    assert torch.isfinite(total) and total.item() > 0
    total.backward()
    assert_gradients_reach(head.atss_cls, head.atss_reg)
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)
    if kind == "rank":  # BRS: ranking terms, the box loss value-balanced to them, no centerness
        assert set(losses) == {"loss_rank", "loss_sort", "loss_bbox"}
        assert losses["loss_bbox"].item() == pytest.approx((losses["loss_rank"] + losses["loss_sort"]).item(), rel=1e-5)


@pytest.mark.parametrize("kind", ["base", "rank"])
def test_atss_loss_weight_scales_every_loss(kind):
    samples, feats = _samples([2, 2]), _features(2)
    plain = _build(_atss_cfg(kind)).loss(feats, samples)
    scaled = _build(_atss_cfg(kind) | dict(loss_weight=12.0)).loss(feats, samples)
    assert set(plain) == set(scaled)
    for key in plain:
        if key == "pos_coords":
            continue
        values = plain[key] if isinstance(plain[key], list) else [plain[key]]
        weighted = scaled[key] if isinstance(scaled[key], list) else [scaled[key]]
        for a, b in zip(values, weighted):
            assert b.item() == pytest.approx(12.0 * a.item(), rel=1e-5), key


@pytest.mark.parametrize("kind", ["base", "rank"])
def test_atss_batch_without_ground_truth(kind):
    head = _build(_atss_cfg(kind))
    feats = _features(2)
    losses = head.loss(feats, _samples([0, 0]))
    pos = losses.pop("pos_coords")
    assert len(pos) == 4 and all((label == NUM_CLASSES).all() for label in pos[1])
    total = total_loss(losses)
    assert torch.isfinite(total)
    total.backward()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="loss_weight"):
        _build(_atss_cfg("rank") | dict(loss_weight=0))
    with pytest.raises(ValueError, match="reg_decoded_bbox"):
        _build(_atss_cfg("base") | dict(reg_decoded_bbox=False))
    with pytest.raises(ValueError, match="kind"):
        positive_coords([torch.zeros(1, 4)], [torch.zeros(1)], [torch.zeros(1, 4)], "retina")
    with pytest.raises(ValueError, match="RoI features"):
        positive_coords([torch.zeros(1, 4)], [torch.zeros(1)], [torch.zeros(1, 4)], "rcnn")
    with pytest.raises(ValueError, match="expected N x 4"):
        positive_coords([torch.zeros(2, 4)], [torch.zeros(1)], [torch.zeros(2, 4)], "atss")


def test_scale_losses_leaves_statistics():
    losses = {"loss_a": torch.tensor(2.0), "loss_b": [torch.tensor(1.0), torch.tensor(3.0)], "neg_per_pos": torch.tensor(5.0)}
    scaled = scale_losses(losses, 3.0)
    assert scaled["loss_a"].item() == 6.0 and [v.item() for v in scaled["loss_b"]] == [3.0, 9.0]
    assert scaled["neg_per_pos"].item() == 5.0


# ---------------------------------------------------------------------------- R-CNN
def _roi_cfg(kind, num=64):
    bbox_head = dict(
        in_channels=CHANNELS,
        fc_out_channels=32,
        roi_feat_size=7,
        num_classes=NUM_CLASSES,
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2]),
        reg_class_agnostic=False,
        reg_decoded_bbox=True,
    )
    if kind == "base":
        bbox_head.update(
            type="Shared2FCBBoxHead",
            loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=12.0),
            loss_bbox=dict(type="GIoULoss", loss_weight=120.0),
        )
    else:
        bbox_head.update(
            type="RankBasedShared2FCBBoxHead",
            loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0),
            loss_bbox=dict(type="GIoULoss", reduction="none"),
            loss_rank=dict(type="BucketedRankSortLoss", delta=0.5),
        )
    return ConfigDict(
        type="CoStandardRoIHead" if kind == "base" else "RankBasedCoStandardRoIHead",
        bbox_roi_extractor=dict(
            type="SingleRoIExtractor",
            roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0),
            out_channels=CHANNELS,
            featmap_strides=STRIDES[:4],
            finest_scale=112,
        ),
        bbox_head=bbox_head,
        train_cfg=dict(
            assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5, match_low_quality=False, ignore_iof_thr=-1),
            sampler=dict(type="RandomSampler", num=num, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False,
        ),
    )


def _proposals(samples, count=40, seed=2):
    gen = torch.Generator().manual_seed(seed)
    results = []
    for sample in samples:
        gts = sample.gt_instances.bboxes
        jitter = gts.repeat(3, 1) + torch.randn(gts.shape[0] * 3, 4, generator=gen) * 3
        xy = torch.rand(count, 2, generator=gen) * SIZE * 0.7
        rand = torch.cat([xy, xy + 8 + torch.rand(count, 2, generator=gen) * 30], 1)
        boxes = torch.cat([jitter, rand]).clamp(0, SIZE)
        results.append(InstanceData(bboxes=boxes, scores=torch.rand(boxes.shape[0], generator=gen)))
    return results


@pytest.mark.parametrize("kind", ["base", "rank"])
def test_rcnn_pos_coords_are_the_sampled_proposals(kind):
    head = _build(_roi_cfg(kind))
    samples = _samples([3, 2])
    feats = _features(2, levels=4)
    recorded = []
    sample_fn = head.bbox_sampler.sample

    def recording_sample(*args, **kwargs):
        recorded.append(sample_fn(*args, **kwargs))
        return recorded[-1]

    head.bbox_sampler.sample = recording_sample
    losses = head.loss(feats, _proposals(samples), samples)
    coords, labels, targets, feats_per_image, name = losses.pop("pos_coords")
    assert name == "rcnn" and len(recorded) == 2
    assert [f.shape for f in feats_per_image] == [(c.shape[0], CHANNELS) for c in coords]
    assert feats_per_image[0].requires_grad  # the query contents stay in the graph, as the official
    for i, res in enumerate(recorded):
        num_pos = res.pos_inds.numel()
        assert num_pos > 0 and coords[i].shape == (num_pos + res.neg_inds.numel(), 4)
        torch.testing.assert_close(coords[i], res.priors)
        torch.testing.assert_close(labels[i][:num_pos], res.pos_gt_labels)
        assert (labels[i][num_pos:] == NUM_CLASSES).all()
        torch.testing.assert_close(targets[i][:num_pos], res.pos_gt_bboxes)
        # positives are the proposals with IoU >= 0.5 to their target gt box
        assert (bbox_overlaps(coords[i][:num_pos], targets[i][:num_pos], is_aligned=True) >= 0.5 - 1e-6).all()
    total = total_loss(losses)
    assert torch.isfinite(total) and total.item() > 0
    total.backward()
    assert_gradients_reach(head.bbox_head.fc_cls, head.bbox_head.fc_reg, head.bbox_head.shared_fcs[0])
    assert sum(f.grad.abs().sum() for f in feats) > 0
    if kind == "rank":
        assert {"loss_roi_rank", "loss_roi_sort", "loss_roi_bbox"} <= set(losses)


def test_rcnn_loss_weight_and_empty_images():
    samples, feats = _samples([2, 1]), _features(2, levels=4)
    torch.manual_seed(5)
    plain = _build(_roi_cfg("rank")).loss(feats, _proposals(samples), samples)
    torch.manual_seed(5)
    scaled = _build(_roi_cfg("rank") | dict(loss_weight=12.0)).loss(feats, _proposals(samples), samples)
    for key in ("loss_roi_rank", "loss_roi_sort", "loss_roi_bbox"):
        assert scaled[key].item() == pytest.approx(12.0 * plain[key].item(), rel=1e-5)
    assert scaled["neg_per_pos_rcnn_instances"].item() == pytest.approx(plain["neg_per_pos_rcnn_instances"].item())
    empty = _samples([0, 0])
    for kind in ("base", "rank"):
        losses = _build(_roi_cfg(kind)).loss(feats, _proposals(samples), empty)
        pos = losses.pop("pos_coords")
        assert len(pos) == 5 and all((label == NUM_CLASSES).all() and label.numel() > 0 for label in pos[1])
        total = total_loss(losses)
        assert torch.isfinite(total)
        total.backward()


# ------------------------------------------------------------- one-to-one head (BRS-DETR)
def _giou_loss_by_hand(a, b):
    """1 - GIoU of two xyxy boxes (Rezatofighi et al. 2019), written out."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union, 1.0 - (inter / union - (hull - union) / hull)


def _xyxy(box, w, h):
    cx, cy, bw, bh = box
    return [(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h]


@pytest.mark.parametrize("task_balance", ["value", 1.0])
def test_query_ranking_loss_on_a_fixed_matching_equals_a_hand_computation(task_balance):
    """2 images x 3 queries, 3 classes; matched: (image 0, query 1) <-> a class-2 gt,
    (image 1, query 0) <-> class 0, (image 1, query 2) <-> class 1.  The targets of BRS
    Loss are the IoUs of the matched predictions at (query, gt class), 0 elsewhere; the
    loss is the paper-equation oracle's; the box losses are the score-weighted means."""
    from loss_oracles import bucketed_rank_sort

    from rankrepro.models.dense_heads.co_deformable_detr_head import image_factors
    from rankrepro.models.dense_heads.rank_based_co_detr_head import ranking_query_losses

    sizes = [(100, 80), (60, 120)]  # (w, h)
    torch.manual_seed(3)
    logits = torch.randn(6, 3, dtype=torch.float64).float().requires_grad_(True)
    preds = torch.tensor(
        [[0.5, 0.5, 0.2, 0.2], [0.40, 0.45, 0.30, 0.50], [0.7, 0.2, 0.1, 0.1], [0.30, 0.30, 0.20, 0.25], [0.5, 0.5, 0.6, 0.6], [0.62, 0.70, 0.30, 0.20]],
        requires_grad=True,
    )
    gts = torch.tensor([[0, 0, 0, 0], [0.42, 0.50, 0.28, 0.40], [0, 0, 0, 0], [0.33, 0.28, 0.22, 0.30], [0, 0, 0, 0], [0.60, 0.66, 0.35, 0.28]])
    labels = torch.tensor([3, 2, 3, 0, 3, 1])
    matched = {1: 2, 3: 0, 5: 1}  # query -> gt class
    metas = [dict(img_shape=(h, w)) for w, h in sizes]
    factors = image_factors(metas, 3, preds)
    loss_rank = MODELS.build(dict(type="BucketedRankSortLoss", delta=0.5))
    l1 = MODELS.build(dict(type="L1Loss", loss_weight=5.0))
    giou = MODELS.build(dict(type="GIoULoss", loss_weight=2.0))
    losses = ranking_query_losses(
        loss_rank, l1, giou, logits, preds, labels, torch.ones(6), gts, factors, "score", task_balance
    )

    targets = torch.zeros(6, 3, dtype=torch.float64)
    weights, l1_hand, giou_hand = [], [], []
    for q, cls in matched.items():
        w, h = sizes[q // 3]
        iou, giou_loss = _giou_loss_by_hand(_xyxy(preds[q].tolist(), w, h), _xyxy(gts[q].tolist(), w, h))
        targets[q, cls] = iou
        weights.append(torch.sigmoid(logits[q].detach().double()).max().item())
        l1_hand.append(5.0 * (preds[q] - gts[q]).abs().sum().item())
        giou_hand.append(2.0 * giou_loss)
    (rank, sort), (g_rank, g_sort) = bucketed_rank_sort(logits, targets, 0.5)
    assert losses["loss_rank"].item() == pytest.approx(rank, rel=1e-5)
    assert losses["loss_sort"].item() == pytest.approx(sort, rel=1e-5)
    assert rank > 0 and sort != 0
    mean = lambda values: sum(w * v for w, v in zip(weights, values)) / sum(weights)  # noqa: E731
    if task_balance == "value":  # each box loss scaled to the value of L_RS
        assert losses["loss_bbox"].item() == pytest.approx(rank + sort, rel=1e-5)
        assert losses["loss_iou"].item() == pytest.approx(rank + sort, rel=1e-5)
    else:
        assert losses["loss_bbox"].item() == pytest.approx(mean(l1_hand), rel=1e-5)
        assert losses["loss_iou"].item() == pytest.approx(mean(giou_hand), rel=1e-5)
    # the identity-update gradients of the ranking terms reach exactly the logits the oracle says
    (grad,) = torch.autograd.grad(losses["loss_rank"] + losses["loss_sort"], logits, retain_graph=True)
    torch.testing.assert_close(grad.double().reshape(-1), g_rank + g_sort, rtol=1e-5, atol=1e-7)
    # box gradients only at the matched queries
    (box_grad,) = torch.autograd.grad(losses["loss_bbox"] + losses["loss_iou"], preds)
    assert (box_grad[[0, 2, 4]] == 0).all() and (box_grad[[1, 3, 5]].abs().sum(-1) > 0).all()


def test_query_ranking_loss_without_matches_and_bad_input():
    from rankrepro.models.dense_heads.rank_based_co_detr_head import ranking_query_losses

    loss_rank = MODELS.build(dict(type="BucketedRankSortLoss", delta=0.5))
    l1, giou = MODELS.build(dict(type="L1Loss")), MODELS.build(dict(type="GIoULoss"))
    logits = torch.randn(4, 2, requires_grad=True)
    preds = torch.rand(4, 4, requires_grad=True)
    losses = ranking_query_losses(loss_rank, l1, giou, logits, preds, torch.full((4,), 2), torch.ones(4), torch.rand(4, 4), torch.ones(4, 4) * 50)
    assert all(v.item() == 0.0 for v in losses.values())
    sum(losses.values()).backward()  # connected to the graph
    with pytest.raises(ValueError, match="weighting"):
        ranking_query_losses(loss_rank, l1, giou, logits, preds, torch.full((4,), 2), torch.ones(4), torch.rand(4, 4), torch.ones(4, 4), "iou")
    with pytest.raises(ValueError, match="labels"):
        ranking_query_losses(loss_rank, l1, giou, logits, preds, torch.full((3,), 2), torch.ones(4), torch.rand(4, 4), torch.ones(4, 4))
