"""Test-time candidate selection: mmdet 2.x's (per level the ``nms_pre`` best anchors by max
class score, all their classes into multi-class NMS) against mmdet 3.x's (the ``nms_pre``
best (anchor, class) pairs), on a constructed case computed by hand; and which configs use
which."""
import glob
import math

import pytest
import torch

pytest.importorskip("mmdet")
from mmengine.config import Config, ConfigDict  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402

import rankrepro.models  # noqa: E402,F401

register_all_modules()

CFG = ConfigDict(nms_pre=2, score_thr=0.05, nms=dict(type="nms", iou_threshold=0.5), max_per_img=100)
# Two levels, one anchor per location, two classes.  Level 0: anchors a0, a1, a2 (nms_pre = 2
# cuts it); level 1: anchor a3.  The boxes are disjoint, so NMS suppresses nothing.
PROBS = [torch.tensor([[0.9, 0.8], [0.7, 0.1], [0.2, 0.75]]), torch.tensor([[0.03, 0.6]])]
ANCHORS = [
    torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0], [40.0, 0.0, 50.0, 10.0]]),
    torch.tensor([[0.0, 40.0, 20.0, 60.0]]),
]
IMG_META = {"img_shape": (100, 100), "scale_factor": (1.0, 1.0)}
# mmdet 2.x's detections (anchor index, class, score), worked out in the first test's docstring
BY_ANCHORS = [(0, 0, 0.9), (0, 1, 0.8), (2, 1, 0.75), (3, 1, 0.6), (2, 0, 0.2)]


def _logit(p):
    return torch.log(p / (1 - p))


def _level_maps(probs, factors=None):
    """Per level: class logits (C, 1, N), zero box deltas (4, 1, N), factor logits (1, 1, N)."""
    cls = [_logit(p).t().reshape(p.shape[1], 1, -1) for p in probs]
    deltas = [torch.zeros(4, 1, p.shape[0]) for p in probs]
    if factors is None:
        return cls, deltas, [None] * len(probs)
    return cls, deltas, [_logit(f).reshape(1, 1, -1) for f in factors]


def _head(type_, test_candidates, **kwargs):
    cfg = dict(
        type=type_,
        num_classes=2,
        in_channels=32,
        feat_channels=32,  # ATSS's GroupNorm has 32 groups
        stacked_convs=1,
        anchor_generator=dict(type="AnchorGenerator", ratios=[1.0], octave_base_scale=4, scales_per_octave=1, strides=[8, 16]),
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2]),
        test_cfg=CFG,
        **kwargs,
    )
    if test_candidates is not None:
        cfg["test_candidates"] = test_candidates
    return MODELS.build(cfg)


GIOU = dict(type="GIoULoss", reduction="none")
HEADS = {
    "RankBasedATSSHead": dict(loss_rank=dict(type="RankSortLoss"), loss_bbox=GIOU),
    "RankingRetinaHead": dict(loss_rank=dict(type="aLRPLoss"), loss_bbox=GIOU),
}


def _detections(head, anchors, factors=None):
    """``(box, label, score)`` of the head's detections on ``PROBS`` (zero deltas: box = anchor)."""
    cls, deltas, factor_maps = _level_maps(PROBS, factors)
    with torch.no_grad():
        result = head._predict_by_feat_single(cls, deltas, factor_maps, anchors, IMG_META, CFG, rescale=False, with_nms=True)
    found = [(tuple(b.tolist()), int(label), float(s)) for b, label, s in zip(result.bboxes, result.labels, result.scores)]
    return sorted(found, key=lambda d: -d[2])


def _assert_detections(got, anchors, expected):
    """``expected``: ``(anchor index a0..a3, label, score)`` in descending score."""
    boxes = [tuple(box.tolist()) for box in torch.cat(anchors)]
    assert [(box, label) for box, label, _ in got] == [(boxes[a], label) for a, label, _ in expected]
    assert [score for _, _, score in got] == pytest.approx([score for _, _, score in expected], rel=1e-5)


@pytest.mark.parametrize("type_", sorted(HEADS))
def test_anchor_and_pair_selection_differ_and_anchors_match_the_hand_computation(type_):
    """Level 0, nms_pre 2.  2.x: the two anchors with the highest max score are a0 (0.9) and
    a2 (0.75); all their classes above 0.05 are kept: (a0, 0) 0.9, (a0, 1) 0.8, (a2, 1) 0.75,
    (a2, 0) 0.2.  3.x: the two best pairs are (a0, 0) 0.9 and (a0, 1) 0.8.  Level 1 (one
    anchor): (a3, 1) 0.6 in both ((a3, 0) 0.03 is below the threshold)."""
    anchors = _detections(_head(type_, "anchors", **HEADS[type_]), ANCHORS)
    pairs = _detections(_head(type_, "pairs", **HEADS[type_]), ANCHORS)
    _assert_detections(anchors, ANCHORS, BY_ANCHORS)
    _assert_detections(pairs, ANCHORS, [(0, 0, 0.9), (0, 1, 0.8), (3, 1, 0.6)])


def test_paa_head_selects_by_anchors():
    """RankBasedPAAHead (no IoU branch) shares the selection; without score voting it gives
    the same detections."""
    focal = dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25)  # PAA's candidate scoring
    head = _head("RankBasedPAAHead", None, loss_rank=dict(type="RankSortLoss"), loss_cls=focal, loss_bbox=GIOU, score_voting=False)
    _assert_detections(_detections(head, ANCHORS), ANCHORS, BY_ANCHORS)


def test_anchor_selection_runs_class_wise_nms():
    """a2 moved onto a0 (IoU 9/11): NMS per class removes (a2, 1) 0.75 under (a0, 1) 0.8 and
    (a2, 0) 0.2 under (a0, 0) 0.9, while (a0, 0) and (a0, 1), of different classes, both stay."""
    anchors = [ANCHORS[0].clone(), ANCHORS[1]]
    anchors[0][2] = torch.tensor([1.0, 0.0, 11.0, 10.0])
    head = _head("RankBasedATSSHead", "anchors", **HEADS["RankBasedATSSHead"])
    _assert_detections(_detections(head, anchors), anchors, [(0, 0, 0.9), (0, 1, 0.8), (3, 1, 0.6)])


def test_anchor_selection_with_centerness_is_mmdet_28_atss():
    """mmdet 2.8's ATSSHead: the probabilities times sigmoid(centerness) rank the anchors and
    are thresholded.  Factors a0 0.5, a1 1, a2 1, a3 0.1: products a0 (0.45, 0.4), a1 (0.7,
    0.1), a2 (0.2, 0.75), a3 (0.003, 0.06); level 0 keeps a2 (0.75) and a1 (0.7)."""
    factors = [torch.tensor([0.5, 1 - 1e-7, 1 - 1e-7]), torch.tensor([0.1])]
    head = _head("CandidateSwitchATSSHead", "anchors")
    expected = [(2, 1, 0.75), (1, 0, 0.7), (2, 0, 0.2), (1, 1, 0.1), (3, 1, 0.06)]
    _assert_detections(_detections(head, ANCHORS, factors), ANCHORS, expected)
    # mmdet 3.x: the pairs (a0, 0), (a0, 1) by their raw probabilities, multiplied afterwards
    pairs = _detections(_head("CandidateSwitchATSSHead", "pairs"), ANCHORS, factors)
    _assert_detections(pairs, ANCHORS, [(0, 0, 0.45), (0, 1, 0.4), (3, 1, 0.06)])


def test_anchor_candidates_without_nms_are_the_pairs_above_the_threshold():
    head = _head("RankBasedATSSHead", "anchors", **HEADS["RankBasedATSSHead"])
    cls, deltas, factors = _level_maps(PROBS)
    with torch.no_grad():
        result = head._predict_by_feat_single(cls, deltas, factors, ANCHORS, IMG_META, CFG, with_nms=False)
    got = sorted(zip(result.scores.tolist(), result.labels.tolist()), reverse=True)
    assert [label for _, label in got] == [0, 1, 1, 1, 0]
    assert [s for s, _ in got] == pytest.approx([0.9, 0.8, 0.75, 0.6, 0.2], rel=1e-5)


def test_unknown_selection_is_rejected():
    with pytest.raises(ValueError, match="test_candidates must be one of"):
        _head("RankBasedATSSHead", "classes", **HEADS["RankBasedATSSHead"])


def test_configs_select_candidates_as_the_code_behind_their_numbers():
    """ATSS (RankSortLoss repo, mmdet 2.8; Bucketed repo's heads): anchors.  RetinaNet (the
    AP-Loss-based aLRP code): (anchor, class) pairs above 0.01.  PAA heads select anchors
    themselves (RankBasedPAAHead and mmdet's PAAHead)."""
    atss = sorted(glob.glob("configs/atss/*.py"))
    assert len(atss) > 40
    for path in atss:
        head = Config.fromfile(path).model.bbox_head
        assert head.get("test_candidates") == "anchors", path
    assert Config.fromfile("configs/atss/fl_atss_r50_fpn_1x_coco.py").model.bbox_head.type == "CandidateSwitchATSSHead"
    for path in sorted(glob.glob("configs/retinanet/*.py")):
        cfg = Config.fromfile(path)
        if "fl_retinanet" in path:  # mmdet's RetinaNet as a reference, no published row
            assert "test_candidates" not in cfg.model.bbox_head
            continue
        assert cfg.model.bbox_head.test_candidates == "pairs" and math.isclose(cfg.model.test_cfg.score_thr, 0.01), path
