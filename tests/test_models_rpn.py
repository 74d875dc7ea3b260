"""RS-R-CNN's RPN (RankBasedRPNHead): ranking loss on all anchors, score-weighted and
value-balanced GIoU, x 0.2, imbalance statistics, samplers, aLRP / BRS variants."""
import math
import os

import pytest
import torch

pytest.importorskip("mmdet")
import mmdet  # noqa: E402
from mmengine.config import Config, ConfigDict  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures.bbox import bbox_overlaps  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from model_cases import assert_gradients_reach, random_batch, recorded_calls, total_loss  # noqa: E402

import rankrepro.models  # noqa: E402,F401
from rankrepro.losses import alrp_loss, bucketed_rank_sort_loss, rank_sort_loss  # noqa: E402
from rankrepro.models.dense_heads.rank_based_rpn_head import ALRP_TAU, RankBasedRPNHead  # noqa: E402
from rankrepro.smoke import smoke_config  # noqa: E402

register_all_modules()
MMDET_CONFIGS = os.path.join(os.path.dirname(mmdet.__file__), ".mim", "configs")
STDS = (0.1, 0.1, 0.2, 0.2)
CLIP = abs(math.log(16 / 1000))
IMAGE = 64
STRIDES = (4, 8, 16, 32, 64)
NUM_ANCHORS = 3  # ratios 0.5, 1, 2 at scale 8

#: what a Faster R-CNN config sets for this head (reported to the team; used below)
RS_RPN_HEAD = dict(
    type="RankBasedRPNHead",
    loss_rank=dict(type="RankSortLoss", delta=0.5),
    bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=list(STDS)),
    loss_bbox=dict(type="GIoULoss", reduction="none"),
    head_weight=0.2,
)


def faster_rcnn_model_cfg():
    return Config.fromfile(os.path.join(MMDET_CONFIGS, "_base_", "models", "faster-rcnn_r50_fpn.py")).model


def build_head(sampler="pseudo", sb_period=10, **overrides):
    """mmdet's Faster R-CNN rpn_head (8 channels) as RankBasedRPNHead, with its train_cfg.rpn
    (PseudoSampler unless ``sampler='random'``: mmdet's RandomSampler, 256, 1/2 positives)."""
    model = faster_rcnn_model_cfg()
    cfg = model.rpn_head
    cfg.update(RS_RPN_HEAD)
    cfg.update(in_channels=8, feat_channels=8)
    for key, value in overrides.items():  # replace, not merge (ConfigDict.update merges dicts)
        cfg.pop(key, None)
        cfg[key] = value
    cfg.train_cfg = model.train_cfg.rpn
    if sampler == "pseudo":
        cfg.train_cfg.sampler = dict(type="PseudoSampler")
    cfg.test_cfg = model.test_cfg.rpn
    head = MODELS.build(cfg)
    head.init_weights()
    if head.sb_initial is not None and sb_period is not None:
        head.set_self_balancing_period(sb_period)
    return head


def featmap_sizes(size=IMAGE):
    return [(size // s, size // s) for s in STRIDES]


def head_outputs(num_images, seed=0):
    """Random objectness logits and deltas (leaf tensors) of the head's output shapes."""
    gen = torch.Generator().manual_seed(seed)
    cls = [torch.randn(num_images, NUM_ANCHORS, h, w, generator=gen).requires_grad_() for h, w in featmap_sizes()]
    reg = [(0.5 * torch.randn(num_images, 4 * NUM_ANCHORS, h, w, generator=gen)).requires_grad_() for h, w in featmap_sizes()]
    return cls, reg


def metas(*shapes):
    return [dict(img_shape=s, pad_shape=s, batch_input_shape=(IMAGE, IMAGE)) for s in shapes]


def gts(*boxes):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return InstanceData(bboxes=boxes, labels=torch.zeros(len(boxes), dtype=torch.long))


def rpn_loss_terms(losses):
    return sum(v for k, v in losses.items() if "loss" in k)


# ------------------------------------------------------------- hand computation helpers
def image_anchors(head):
    """The anchors of one image, level by level, in the (h, w, anchor) order of
    ``permute(0, 2, 3, 1)``, and each anchor's level."""
    levels = head.prior_generator.grid_priors(featmap_sizes(), device="cpu")
    return torch.cat(levels), torch.cat([torch.full((len(a),), i) for i, a in enumerate(levels)])


def image_flat(tensors, image, width):
    """One image's outputs flattened like the anchors (levels concatenated)."""
    return torch.cat([t[image].permute(1, 2, 0).reshape(-1, width) for t in tensors])


def hand_assign(anchors, gt_boxes, valid):
    """MaxIoUAssigner of Faster R-CNN's RPN by hand: positive IoU >= 0.7 or the best anchor
    of a gt (IoU >= 0.3), negative IoU < 0.3, ignored otherwise and outside ``valid``.
    Returns (state: 1 pos / 0 neg / -1 ignored, assigned gt index)."""
    state = torch.full((len(anchors),), -1)
    assigned = torch.zeros(len(anchors), dtype=torch.long)
    if len(gt_boxes) == 0:
        state[valid] = 0
        return state, assigned
    iou = bbox_overlaps(anchors, gt_boxes)
    iou[~valid] = -1
    best, assigned = iou.max(dim=1)
    state[(best >= 0) & (best < 0.3)] = 0
    state[best >= 0.7] = 1
    for g in range(len(gt_boxes)):
        top = iou[:, g].max()
        if top >= 0.3:
            hit = iou[:, g] == top
            state[hit], assigned[hit] = 1, g
    return state, assigned


def unit_frame(deltas):
    """The official ``delta2bbox``: deltas decoded relative to a unit box at the origin."""
    d = deltas * deltas.new_tensor(STDS)
    wh = d[:, 2:].clamp(-CLIP, CLIP).exp()
    return torch.cat([d[:, :2] - wh / 2, d[:, :2] + wh / 2], dim=1)


def hand_encode(anchors, boxes):
    """mmdet 2.x / 3.x DeltaXYWHBBoxCoder.encode with the official stds, written out."""
    a_c, a_wh = (anchors[:, :2] + anchors[:, 2:]) / 2, anchors[:, 2:] - anchors[:, :2]
    g_c, g_wh = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]
    d = torch.cat([(g_c - a_c) / a_wh, torch.log(g_wh / a_wh)], dim=1)
    return d / d.new_tensor(STDS)


def hand_problem(head, cls, reg, images, keep=None):
    """The RPN's ranking problem written from the paper and the official code: flat
    logits, positives' decoded boxes (unit frame) and targets, per image concatenated.
    ``images``: list of (gt boxes, valid anchor mask); ``keep``: per image, a mask of the
    anchors a sampler kept (others ignored)."""
    anchors, _ = image_anchors(head)
    logits, states, preds, targets = [], [], [], []
    for i, (gt_boxes, valid) in enumerate(images):
        state, assigned = hand_assign(anchors, gt_boxes, valid)
        if keep is not None:
            state[~keep[i]] = -1
        pos = state == 1
        logits.append(image_flat(cls, i, 1).reshape(-1))
        states.append(state)
        preds.append(unit_frame(image_flat(reg, i, 4)[pos]))
        if pos.any():
            targets.append(unit_frame(hand_encode(anchors[pos], gt_boxes[assigned[pos]])))
        else:
            targets.append(torch.zeros(0, 4))
    return torch.cat(logits), torch.cat(states), torch.cat(preds), torch.cat(targets)


def hand_rs_losses(head, cls, reg, images, loss_fn=rank_sort_loss, keep=None):
    logits, state, pred, target = hand_problem(head, cls, reg, images, keep)
    iou = bbox_overlaps(pred.detach(), target, is_aligned=True)
    targets = torch.where(state == 1, 0.0, state.float())
    targets[state == 1] = iou
    rank, sort = loss_fn(logits, targets, 0.5)
    giou_loss = 1 - bbox_overlaps(pred, target, mode="giou", is_aligned=True)
    weights = logits[state == 1].detach().sigmoid()
    box = (weights * giou_loss).sum() / weights.sum()
    box = box * ((rank + sort).detach() / box.detach())
    return {"loss_rpn_rank": 0.2 * rank, "loss_rpn_sort": 0.2 * sort, "loss_rpn_bbox": 0.2 * box}, state


def gradients(total, tensors):
    return torch.autograd.grad(total, tensors, retain_graph=True)


ALL_VALID = torch.ones(sum(h * w for h, w in featmap_sizes()) * NUM_ANCHORS, dtype=torch.bool)
GT_A = [[10.0, 10.0, 40.0, 40.0]]
GT_B = [[4.0, 20.0, 28.0, 60.0], [34.0, 2.0, 62.0, 22.0]]


# ------------------------------------------------------------------------------ tests
def test_forward_backward_reaches_both_branches():
    head = build_head()
    torch.manual_seed(0)
    feats = [torch.randn(2, 8, h, w) for h, w in featmap_sizes()]
    cls, reg = head(feats)
    losses = head.loss_by_feat(cls, reg, [gts(*GT_A), gts(*GT_B)], metas((IMAGE, IMAGE), (IMAGE, IMAGE)))
    assert set(losses) == {"loss_rpn_rank", "loss_rpn_sort", "loss_rpn_bbox", "neg_per_pos_rpn_instances", "neg_per_pos_rpn_tasks"}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    assert losses["loss_rpn_rank"] > 0 and losses["loss_rpn_bbox"] > 0
    assert not losses["neg_per_pos_rpn_instances"].requires_grad
    rpn_loss_terms(losses).backward()
    assert_gradients_reach(head.rpn_conv, head.rpn_cls, head.rpn_reg)


@pytest.mark.parametrize("loss_type, loss_fn", [("RankSortLoss", rank_sort_loss), ("BucketedRankSortLoss", bucketed_rank_sort_loss)])
def test_loss_equals_hand_computation_in_the_official_frame(loss_type, loss_fn):
    """Two images; IoU targets, GIoU, score weights, value balancing, x 0.2, all written from
    the paper with the official unit-frame decoding: values and gradients agree."""
    head = build_head(loss_rank=dict(type=loss_type, delta=0.5))
    cls, reg = head_outputs(2)
    losses = head.loss_by_feat(cls, reg, [gts(*GT_A), gts(*GT_B)], metas((IMAGE, IMAGE), (IMAGE, IMAGE)))
    gt_a, gt_b = torch.tensor(GT_A), torch.tensor(GT_B)
    expected, state = hand_rs_losses(head, cls, reg, [(gt_a, ALL_VALID), (gt_b, ALL_VALID)], loss_fn)
    assert (state == 1).sum() >= 3 and (state == -1).sum() > 0  # positives and ignored anchors exist
    for key, value in expected.items():
        assert losses[key].item() == pytest.approx(value.item(), rel=1e-5, abs=1e-7), key
    assert losses["loss_rpn_bbox"].item() == pytest.approx(losses["loss_rpn_rank"].item() + losses["loss_rpn_sort"].item(), rel=1e-5)
    ours = gradients(rpn_loss_terms(losses), cls + reg)
    theirs = gradients(sum(expected.values()), cls + reg)
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-8)


def test_anchor_frame_decoding_equals_the_official_unit_frame():
    """mmdet decodes relative to the anchor, the official relative to a unit box at the
    origin: IoU and GIoU Loss agree to 1e-6 on random deltas, clamped dw, dh included
    (both clip at |log(16/1000)| after the stds)."""
    head = build_head()
    gen = torch.Generator().manual_seed(1)
    xy = torch.rand(400, 2, generator=gen, dtype=torch.float64) * 500
    anchors = torch.cat([xy, xy + 8 + torch.rand(400, 2, generator=gen, dtype=torch.float64) * 300], dim=1)
    pred = torch.randn(400, 4, generator=gen, dtype=torch.float64) * 3
    pred[:20, 2:] = 40.0  # beyond the clamp: exp(0.2 * 40) would be 2981
    gt_boxes = head.bbox_coder.decode(anchors, torch.randn(400, 4, generator=gen, dtype=torch.float64))
    ours = head.bbox_coder.decode(anchors, pred)
    official_pred, official_gt = unit_frame(pred), unit_frame(hand_encode(anchors, gt_boxes))
    assert torch.allclose(ours[:20, 2:] - ours[:20, :2], (anchors[:20, 2:] - anchors[:20, :2]) * 1000 / 16)
    for mode in ("iou", "giou"):
        a = bbox_overlaps(ours, gt_boxes, mode=mode, is_aligned=True)
        b = bbox_overlaps(official_pred, official_gt, mode=mode, is_aligned=True)
        assert (a - b).abs().max() < 1e-6
    a = head.loss_bbox(ours, gt_boxes, reduction_override="none")
    b = head.loss_bbox(official_pred, official_gt, reduction_override="none")
    assert (a - b).abs().max() < 1e-6 and a.shape == (400,)


def test_ignored_and_padded_anchors_get_no_gradient():
    """Anchors with IoU in [0.3, 0.7) (not a gt's best) and anchors beyond an image's padded
    shape are ignored: zero objectness gradient; only positives get box gradients."""
    head = build_head()
    cls, reg = head_outputs(2, seed=3)
    losses = head.loss_by_feat(cls, reg, [gts(*GT_A), gts([4.0, 4.0, 28.0, 20.0])], metas((IMAGE, IMAGE), (32, 40)))
    cls_grads = gradients(rpn_loss_terms(losses), cls)
    reg_grads = gradients(rpn_loss_terms(losses), reg)
    anchors, _ = image_anchors(head)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    valid_b = torch.cat([  # mmdet's valid flags: feature cells inside ceil(pad / stride)
        ((centres[lvl_mask][:, 0] < math.ceil(40 / s) * s) & (centres[lvl_mask][:, 1] < math.ceil(32 / s) * s))
        for s, lvl_mask in zip(STRIDES, [image_anchors(head)[1] == i for i in range(len(STRIDES))])
    ])
    assert 0 < valid_b.sum() < len(valid_b)
    for image, (gt_boxes, valid) in enumerate([(torch.tensor(GT_A), ALL_VALID), (torch.tensor([[4.0, 4.0, 28.0, 20.0]]), valid_b)]):
        state, _ = hand_assign(anchors, gt_boxes, valid)
        g_cls = image_flat(cls_grads, image, 1).reshape(-1)
        g_reg = image_flat(reg_grads, image, 4)
        assert (state == -1).sum() > 0 and (state == 1).sum() > 0
        assert (g_cls[state == -1] == 0).all()
        assert (g_cls[state == 0] != 0).any() and (g_cls[state == 1] != 0).all()
        assert (g_reg[state != 1] == 0).all() and (g_reg[state == 1] != 0).any(dim=1).all()
        if image == 1:
            assert (g_cls[~valid] == 0).all() and (~valid).sum() > 0


@pytest.mark.parametrize("loss_rank", [dict(type="RankSortLoss"), dict(type="BucketedRankSortLoss"), dict(type="aLRPLoss")])
@pytest.mark.parametrize("boxes", [[], [[1000.0, 1000.0, 1010.0, 1010.0]]], ids=["no_gt", "gt_far_from_anchors"])
def test_batch_without_positives(loss_rank, boxes):
    """The ranking loss's own no-positive value (0) and a zero box loss, connected to the
    graph with zero gradient (the official: constants 1); no imbalance statistics."""
    head = build_head(loss_rank=loss_rank)
    cls, reg = head_outputs(2, seed=4)
    losses = head.loss_by_feat(cls, reg, [gts(*boxes), gts(*boxes)], metas((IMAGE, IMAGE), (IMAGE, IMAGE)))
    expected_keys = {"loss_rpn_cls", "loss_rpn_bbox"} if loss_rank["type"] == "aLRPLoss" else {"loss_rpn_rank", "loss_rpn_sort", "loss_rpn_bbox"}
    assert set(losses) == expected_keys
    assert all(v.item() == 0.0 for v in losses.values())
    for grad in gradients(rpn_loss_terms(losses), cls + reg):
        assert (grad == 0).all()
    if head.sb_initial is not None:
        assert head.sb_weight.state_dict()["count"] == 0


def test_logged_imbalance_on_a_hand_made_case():
    """Negatives per positive among anchors with label weight > 0, over the batch: IoU-ignored
    and padded anchors are counted in neither."""
    head = build_head()
    cls, reg = head_outputs(2, seed=5)
    losses = head.loss_by_feat(cls, reg, [gts(*GT_A), gts(*GT_B)], metas((IMAGE, IMAGE), (IMAGE, IMAGE)))
    anchors, _ = image_anchors(head)
    states = torch.cat([hand_assign(anchors, torch.tensor(g), ALL_VALID)[0] for g in (GT_A, GT_B)])
    num_pos, num_neg = (states == 1).sum().item(), (states == 0).sum().item()
    assert num_pos + num_neg < len(states)  # some anchors ignored
    for key in ("neg_per_pos_rpn_instances", "neg_per_pos_rpn_tasks"):
        assert losses[key].item() == pytest.approx(num_neg / num_pos, rel=1e-6)
    # a single tiny case by hand: one image, one gt equal to an anchor of the 1:1 ratio at stride 64
    head_b = build_head()
    anchors_64 = anchors[image_anchors(head)[1] == 4]
    losses_b = head_b.loss_by_feat(*head_outputs(1, seed=6), [gts(anchors_64[1].tolist())], metas((IMAGE, IMAGE)))
    state_b, _ = hand_assign(anchors, anchors_64[1:2], ALL_VALID)
    assert losses_b["neg_per_pos_rpn_instances"].item() == pytest.approx((state_b == 0).sum().item() / (state_b == 1).sum().item())


def test_random_sampler_ignores_unsampled_anchors():
    """With mmdet's RandomSampler (256 anchors / image, half positive at most) the unsampled
    anchors are ignored: no gradient, not in the loss, not in the statistics."""
    head = build_head(sampler="random")
    cls, reg = head_outputs(2, seed=7)
    torch.manual_seed(0)
    with recorded_calls(head.sampler, "sample") as calls:
        losses = head.loss_by_feat(cls, reg, [gts(*GT_A), gts(*GT_B)], metas((IMAGE, IMAGE), (IMAGE, IMAGE)))
    assert len(calls) == 2
    keep, num_pos = [], 0
    for _, result in calls:
        mask = torch.zeros(len(ALL_VALID), dtype=torch.bool)  # allowed_border=-1: every anchor is "inside"
        mask[result.pos_inds] = mask[result.neg_inds] = True
        assert mask.sum() == 256 and len(result.pos_inds) < 128
        keep.append(mask)
        num_pos += len(result.pos_inds)
    assert losses["neg_per_pos_rpn_instances"].item() == pytest.approx((512 - num_pos) / num_pos)
    expected, _ = hand_rs_losses(head, cls, reg, [(torch.tensor(GT_A), ALL_VALID), (torch.tensor(GT_B), ALL_VALID)], keep=keep)
    for key, value in expected.items():
        assert losses[key].item() == pytest.approx(value.item(), rel=1e-5), key
    cls_grads = gradients(rpn_loss_terms(losses), cls)
    for image in range(2):
        g = image_flat(cls_grads, image, 1).reshape(-1)
        assert (g[~keep[image]] == 0).all() and (g[keep[image]] != 0).any()


def test_alrp_variant_matches_hand_computation_and_self_balances():
    """aLRP: E_loc = (1 - GIoU) / (2 (1 - 0.7)) in both components, L_loc x w_SB (50 in
    the first period), everything x 0.2; then w = (sum L_cls + sum L_loc) / sum L_loc."""
    head = build_head(loss_rank=dict(type="aLRPLoss"), sb_period=2)
    assert ALRP_TAU == 0.7 and head.sb_initial == 50.0
    cls, reg = head_outputs(2, seed=8)
    images = [(torch.tensor(GT_A), ALL_VALID), (torch.tensor(GT_B), ALL_VALID)]
    losses = head.loss_by_feat(cls, reg, [gts(*GT_A), gts(*GT_B)], metas((IMAGE, IMAGE), (IMAGE, IMAGE)))
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_bbox", "neg_per_pos_rpn_instances", "neg_per_pos_rpn_tasks"}
    logits, state, pred, target = hand_problem(head, cls, reg, images)
    e_loc = (1 - bbox_overlaps(pred, target, mode="giou", is_aligned=True)) / 0.6
    cls_loss, loc_loss = alrp_loss(logits, torch.where(state == 1, 1.0, state.float()), e_loc)
    assert losses["loss_rpn_cls"].item() == pytest.approx(0.2 * cls_loss.item(), rel=1e-5)
    assert losses["loss_rpn_bbox"].item() == pytest.approx(0.2 * 50 * loc_loss.item(), rel=1e-5)
    ours = gradients(rpn_loss_terms(losses), cls + reg)
    theirs = gradients(0.2 * (cls_loss + 50 * loc_loss), cls + reg)
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-8)
    head.loss_by_feat(cls, reg, [gts(*GT_A), gts(*GT_B)], metas((IMAGE, IMAGE), (IMAGE, IMAGE)))  # end of the period
    c, l = cls_loss.item(), loc_loss.item()
    assert head.sb_weight.value == pytest.approx((2 * c + 2 * l) / (2 * l), rel=1e-5)


def test_variants_differ_from_rs():
    cls, reg = head_outputs(2, seed=9)
    batch = ([gts(*GT_A), gts(*GT_B)], metas((IMAGE, IMAGE), (IMAGE, IMAGE)))
    results = {}
    for name in ("RankSortLoss", "BucketedRankSortLoss", "aLRPLoss"):
        losses = build_head(loss_rank=dict(type=name)).loss_by_feat(cls, reg, *batch)
        results[name] = (losses, gradients(rpn_loss_terms(losses), cls))
    rs, brs, alrp = results["RankSortLoss"], results["BucketedRankSortLoss"], results["aLRPLoss"]
    # BRS approximates RS's ranking term (negatives bucketed): close, but not equal
    assert abs(brs[0]["loss_rpn_rank"].item() - rs[0]["loss_rpn_rank"].item()) > 1e-6
    assert brs[0]["loss_rpn_sort"].item() == pytest.approx(rs[0]["loss_rpn_sort"].item(), rel=1e-6)  # BRS keeps RS's sorting
    assert (brs[1][0] - rs[1][0]).abs().max() > 1e-3 * rs[1][0].abs().max()  # beyond float rounding
    assert "loss_rpn_rank" not in alrp[0] and not torch.allclose(alrp[1][0], rs[1][0])
    assert alrp[0]["neg_per_pos_rpn_instances"] == rs[0]["neg_per_pos_rpn_instances"]


def test_head_weight_scales_every_rpn_loss():
    cls, reg = head_outputs(2, seed=10)
    batch = ([gts(*GT_A), gts(*GT_B)], metas((IMAGE, IMAGE), (IMAGE, IMAGE)))
    default = build_head().loss_by_feat(cls, reg, *batch)
    full = build_head(head_weight=1.0).loss_by_feat(cls, reg, *batch)
    for key in ("loss_rpn_rank", "loss_rpn_sort", "loss_rpn_bbox"):
        assert default[key].item() == pytest.approx(0.2 * full[key].item(), rel=1e-6)
    assert default["neg_per_pos_rpn_tasks"] == full["neg_per_pos_rpn_tasks"]  # statistics are not weighted


def test_proposals_are_rpn_heads():
    """Test time is mmdet 3.3's RPNHead, unchanged: same weights, same proposals."""
    ours = build_head()
    plain_cfg = faster_rcnn_model_cfg().rpn_head
    plain_cfg.update(in_channels=8, feat_channels=8, bbox_coder=RS_RPN_HEAD["bbox_coder"], test_cfg=faster_rcnn_model_cfg().test_cfg.rpn)
    plain = MODELS.build(plain_cfg)
    plain.load_state_dict({k: v for k, v in ours.state_dict().items() if k != "_extra_state"})  # aLRP's state (None)
    torch.manual_seed(11)
    feats = [torch.randn(2, 8, h, w) for h, w in featmap_sizes()]
    img_metas = metas((IMAGE, IMAGE), (48, 56))
    with torch.no_grad():
        a = ours.predict_by_feat(*ours(feats), batch_img_metas=img_metas, rescale=False)
        b = plain.predict_by_feat(*plain(feats), batch_img_metas=img_metas, rescale=False)
    for x, y in zip(a, b):
        assert len(x) > 0 and torch.equal(x.bboxes, y.bboxes) and torch.equal(x.scores, y.scores)


def test_inside_faster_rcnn_statistics_are_logged_not_summed(tmp_path):
    """The head inside mmdet's Faster R-CNN (smoke-sized): the detector keeps the RPN's keys,
    mmengine logs the statistics and sums only the losses."""
    cfg = Config.fromfile(os.path.join(MMDET_CONFIGS, "faster_rcnn", "faster-rcnn_r50_fpn_1x_coco.py"))
    cfg.model.rpn_head.update(RS_RPN_HEAD)
    cfg.model.train_cfg.rpn.sampler = ConfigDict(type="PseudoSampler")
    cfg = smoke_config(cfg, tmp_path)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert isinstance(model.rpn_head, RankBasedRPNHead) and model.rpn_head.feat_channels == 64
    data = random_batch(model, [3, 2])
    losses = model.loss(data["inputs"], data["data_samples"])
    assert {"loss_rpn_rank", "loss_rpn_sort", "loss_rpn_bbox", "neg_per_pos_rpn_instances", "neg_per_pos_rpn_tasks"} <= set(losses)
    total, log_vars = model.parse_losses(losses)
    assert "neg_per_pos_rpn_tasks" in log_vars and log_vars["neg_per_pos_rpn_tasks"] > 1
    assert total.item() == pytest.approx(total_loss(losses).item(), rel=1e-6)
    total.backward()
    assert_gradients_reach(model.rpn_head.rpn_cls, model.rpn_head.rpn_reg)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(loss_bbox=dict(type="L1Loss")), "one loss per decoded box"),
        (dict(loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False)), "use_sigmoid=True"),
        (dict(reg_decoded_bbox=False), "reg_decoded_bbox"),
        (dict(head_weight=0), "head_weight"),
        (dict(head_weight="0.2"), "head_weight"),
        (dict(loss_rank=dict(type="FocalLoss")), "ranking loss"),
        (dict(loss_rank=dict(type="aLRPLoss"), sb_initial=-1), "sb_initial"),
    ],
)
def test_bad_configuration_is_a_clear_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        build_head(**overrides)


def test_alrp_without_period_explains_the_hook():
    head = build_head(loss_rank=dict(type="aLRPLoss"), sb_period=None)
    cls, reg = head_outputs(1)
    with pytest.raises(RuntimeError, match="ALRPSelfBalancingHook"):
        head.loss_by_feat(cls, reg, [gts(*GT_A)], metas((IMAGE, IMAGE)))
