"""Co-Deformable-DETR (``CoDeformableDETR``, ``CoDeformableDETRHead``, the look-forward-twice
decoder) on CPU, smoke-sized: a tiny ResNet-18, 32 channels, 2 encoder / decoder layers, 20
queries, 128 x 160 px images.

The auxiliary heads here are *stand-ins* written for these tests (mmdet's ATSSHead and
StandardRoIHead whose ``loss`` also returns ``pos_coords``, as the official CoATSSHead /
CoStandardRoIHead); the plugin's own auxiliary heads are tested with their module.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch
from mmdet.models.dense_heads import ATSSHead
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.structures import InstanceData

import rankrepro.models  # noqa: F401  (registers the plugin)
from rankrepro.models.dense_heads.co_deformable_detr_head import CoDeformableDETRHead, check_pos_coords
from rankrepro.models.detectors.co_deformable_detr import CoDeformableDETR
from rankrepro.models.layers import CoDeformableDetrTransformerDecoder

from model_cases import assert_gradients_reach, total_loss

register_all_modules()
NUM_CLASSES = 4
C = 32
H, W = 128, 160  # the extra aux level is 1 x 2: GroupNorm(32) of a 1 x 1 map would be constant


# ----------------------------------------------------------------------- stand-in aux heads
@MODELS.register_module(force=True)
class _TestCoATSSHead(ATSSHead):
    """mmdet's ATSS head whose losses come with ``pos_coords``: every anchor of the image
    (level-major), its label and its assigned gt box (``reg_decoded_bbox``)."""

    def loss_by_feat(self, cls_scores, bbox_preds, centernesses, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore=None):
        losses = super().loss_by_feat(cls_scores, bbox_preds, centernesses, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore)
        anchors, valid = self.get_anchors([s.shape[-2:] for s in cls_scores], batch_img_metas, device=cls_scores[0].device)
        anchor_list, labels_list, _, targets_list, _, _ = self.get_targets(anchors, valid, batch_gt_instances, batch_img_metas)
        per_image = lambda levels: [torch.cat([lvl[i] for lvl in levels]) for i in range(len(batch_img_metas))]  # noqa: E731
        losses["pos_coords"] = (per_image(anchor_list), per_image(labels_list), per_image(targets_list), "atss")
        return losses


@MODELS.register_module(force=True)
class _TestCoRoIHead(StandardRoIHead):
    """mmdet's RoI head whose losses come with ``pos_coords``: the sampled proposals, their
    labels, gt boxes and mean RoI features."""

    def loss(self, x, rpn_results_list, batch_data_samples):
        rpn_results_list = [copy.copy(r) for r in rpn_results_list]
        gts = [s.gt_instances for s in batch_data_samples]
        sampling_results = []
        for i, results in enumerate(rpn_results_list):
            results.priors = results.pop("bboxes")
            assign = self.bbox_assigner.assign(results, gts[i], None)
            sampling_results.append(self.bbox_sampler.sample(assign, results, gts[i], feats=[f[i][None] for f in x]))
        bbox_results = self.bbox_loss(x, sampling_results)
        labels, _, targets, _ = self.bbox_head.get_targets(sampling_results, self.train_cfg, concat=False)
        counts = [len(res.priors) for res in sampling_results]
        feats = bbox_results["bbox_feats"].mean((-1, -2)).split(counts)
        losses = dict(bbox_results["loss_bbox"])
        losses["pos_coords"] = ([r.priors for r in sampling_results], list(labels), list(targets), list(feats), "rcnn")
        return losses


# ------------------------------------------------------------------------------- the model
def model_cfg(num_queries=20, aux=True, **overrides):
    layer = dict(
        self_attn_cfg=dict(embed_dims=C, num_heads=4, dropout=0.0, batch_first=True),
        cross_attn_cfg=dict(embed_dims=C, num_levels=4, dropout=0.0, batch_first=True),
        ffn_cfg=dict(embed_dims=C, feedforward_channels=64, ffn_drop=0.0),
    )
    strides = [8, 16, 32, 64, 128]
    cfg = dict(
        type="CoDeformableDETR",
        num_queries=num_queries,
        num_feature_levels=4,
        with_box_refine=True,
        as_two_stage=True,
        mixed_selection=True,
        look_forward_twice=True,
        data_preprocessor=dict(
            type="DetDataPreprocessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=1
        ),
        backbone=dict(
            type="ResNet", depth=18, base_channels=8, num_stages=4, out_indices=(1, 2, 3), norm_cfg=dict(type="BN"), style="pytorch"
        ),
        neck=dict(
            type="ChannelMapper",
            in_channels=[16, 32, 64],
            kernel_size=1,
            out_channels=C,
            act_cfg=None,
            norm_cfg=dict(type="GN", num_groups=32),
            num_outs=4,
        ),
        encoder=dict(num_layers=2, layer_cfg=dict(self_attn_cfg=dict(embed_dims=C, num_levels=4, dropout=0.0, batch_first=True), ffn_cfg=layer["ffn_cfg"])),
        decoder=dict(num_layers=2, return_intermediate=True, layer_cfg=layer, post_norm_cfg=None),
        positional_encoding=dict(num_feats=C // 2, normalize=True, offset=-0.5),
        bbox_head=dict(
            type="CoDeformableDETRHead",
            num_classes=NUM_CLASSES,
            embed_dims=C,
            sync_cls_avg_factor=True,
            loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0),
            loss_bbox=dict(type="L1Loss", loss_weight=5.0),
            loss_iou=dict(type="GIoULoss", loss_weight=2.0),
        ),
        train_cfg=dict(
            assigner=dict(
                type="HungarianAssigner",
                match_costs=[
                    dict(type="FocalLossCost", weight=2.0),
                    dict(type="BBoxL1Cost", weight=5.0, box_format="xywh"),
                    dict(type="IoUCost", iou_mode="giou", weight=2.0),
                ],
            )
        ),
        test_cfg=dict(max_per_img=10),
    )
    if aux:
        cfg.update(
            aux_rpn_head=dict(
                type="RPNHead",
                in_channels=C,
                feat_channels=C,
                anchor_generator=dict(type="AnchorGenerator", scales=[4], ratios=[0.5, 1.0, 2.0], strides=strides),
                bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[1.0] * 4),
                loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=12.0),
                loss_bbox=dict(type="L1Loss", loss_weight=12.0),
                train_cfg=dict(
                    assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3, match_low_quality=True),
                    sampler=dict(type="RandomSampler", num=64, pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=False),
                    allowed_border=-1,
                    pos_weight=-1,
                ),
                test_cfg=dict(nms_pre=100, max_per_img=50, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0),
            ),
            aux_rpn_proposal=dict(nms_pre=200, max_per_img=50, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0),
            aux_roi_heads=[
                dict(
                    type="_TestCoRoIHead",
                    bbox_roi_extractor=dict(
                        type="SingleRoIExtractor",
                        roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0),
                        out_channels=C,
                        featmap_strides=strides[:4],
                        finest_scale=112,
                    ),
                    bbox_head=dict(
                        type="Shared2FCBBoxHead",
                        in_channels=C,
                        fc_out_channels=64,
                        roi_feat_size=7,
                        num_classes=NUM_CLASSES,
                        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2]),
                        reg_class_agnostic=False,
                        reg_decoded_bbox=True,
                        loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=12.0),
                        loss_bbox=dict(type="GIoULoss", loss_weight=120.0),
                    ),
                    train_cfg=dict(
                        assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5, match_low_quality=False),
                        sampler=dict(type="RandomSampler", num=64, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True),
                        pos_weight=-1,
                    ),
                    test_cfg=dict(score_thr=0.0, nms=dict(type="nms", iou_threshold=0.5), max_per_img=100),
                )
            ],
            aux_dense_heads=[
                dict(
                    type="_TestCoATSSHead",
                    num_classes=NUM_CLASSES,
                    in_channels=C,
                    stacked_convs=1,
                    feat_channels=C,
                    anchor_generator=dict(type="AnchorGenerator", ratios=[1.0], octave_base_scale=8, scales_per_octave=1, strides=strides),
                    bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2]),
                    reg_decoded_bbox=True,
                    loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=12.0),
                    loss_bbox=dict(type="GIoULoss", loss_weight=24.0),
                    loss_centerness=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=12.0),
                    train_cfg=dict(assigner=dict(type="ATSSAssigner", topk=9), allowed_border=-1, pos_weight=-1),
                    test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.0, nms=dict(type="nms", iou_threshold=0.6), max_per_img=100),
                )
            ],
        )
    cfg.update(overrides)
    return cfg


def build(seed=0, **kwargs):
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg(**kwargs))
    model.init_weights()
    return model


def batch(model, num_items=(3, 2), seed=0, training=True, image_shapes=(3, H, W)):
    torch.manual_seed(seed)
    packed = demo_mm_inputs(batch_size=len(num_items), image_shapes=image_shapes, num_items=list(num_items), num_classes=NUM_CLASSES)
    return model.data_preprocessor(packed, training=training)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------- tests
def test_loss_forward_backward_reaches_every_part():
    model = build()
    data = batch(model)
    losses = model.loss(data["inputs"], data["data_samples"])
    # one-to-one (last layer, the other layer, encoder proposals), RPN, RoI head (index 0),
    # ATSS (index 1), and the customised positive queries of both aux heads
    for key in ("loss_cls", "d0.loss_cls", "enc_loss_cls", "loss_rpn_cls", "loss_cls0", "loss_bbox0", "loss_cls1", "loss_centerness1",
                "loss_cls_aux0", "loss_bbox_aux0", "loss_iou_aux0", "d0.loss_iou_aux0", "loss_cls_aux1", "d0.loss_bbox_aux1"):
        assert key in losses, key
    assert "pos_coords" not in losses and not any(k.startswith("pos_coords") for k in losses)
    loss = total_loss(losses)
    assert torch.isfinite(loss)
    loss.backward()
    head = model.bbox_head
    assert_gradients_reach(
        head.cls_branches[0], head.cls_branches[-1], head.reg_branches[0][-1],  # one-to-one head
        model.query_embedding,  # mixed selection content queries
        model.aux_rpn_head.rpn_conv, model.aux_roi_heads[0].bbox_head.fc_cls,  # RPN + RoI head
        model.aux_dense_heads[0].atss_cls, model.aux_dense_heads[0].atss_centerness,  # ATSS
        model.downsample[0],  # the extra aux level
        model.aux_pos_trans[0], model.aux_pos_trans[1], model.aux_pos_feats_trans[0], model.aux_pos_feats_trans[1],
        model.head_pos_embed,
        model.backbone.conv1, model.neck.convs[0].conv,  # backbone and neck
    )


def test_aux_queries_reach_memory_and_their_own_projections_only_through_aux_losses():
    """The aux queries' losses alone train the aux projections and the shared decoder / head."""
    model = build()
    data = batch(model)
    losses = model.loss(data["inputs"], data["data_samples"])
    sum(v for k, v in losses.items() if "_aux" in k).backward()
    assert_gradients_reach(model.aux_pos_trans[1], model.aux_pos_feats_trans[0], model.bbox_head.cls_branches[0],
                           model.decoder.layers[0].cross_attn.value_proj, model.backbone.conv1)
    assert model.pos_trans_fc.weight.grad is None  # the one-to-one queries' projection is not used


def test_image_without_ground_truth():
    model = build()
    data = batch(model, num_items=(0, 2))
    losses = model.loss(data["inputs"], data["data_samples"])
    loss = total_loss(losses)
    assert torch.isfinite(loss)
    loss.backward()
    assert_gradients_reach(model.bbox_head.cls_branches[-1], model.aux_pos_trans[0], model.backbone.conv1)


def test_batch_without_any_ground_truth():
    model = build()
    data = batch(model, num_items=(0, 0))
    losses = model.loss(data["inputs"], data["data_samples"])
    assert torch.isfinite(total_loss(losses))
    # no positives anywhere: the box losses vanish, the classification losses do not
    assert losses["loss_bbox"].item() == 0 and losses["loss_bbox_aux1"].item() == 0
    assert losses["loss_cls"].item() > 0 and losses["loss_cls_aux1"].item() > 0


def test_without_aux_heads_is_deformable_detr_with_the_tricks():
    model = build(aux=False)
    assert not hasattr(model, "downsample") and not hasattr(model, "aux_pos_trans")
    data = batch(model)
    losses = model.loss(data["inputs"], data["data_samples"])
    assert not any("aux" in k or k.endswith("0") for k in losses if k not in ("d0.loss_cls", "d0.loss_bbox", "d0.loss_iou"))
    total_loss(losses).backward()
    assert_gradients_reach(model.bbox_head.cls_branches[0], model.backbone.conv1)


def test_predict_returns_boxes_in_original_image_coordinates():
    model = build()
    model.eval()
    data = batch(model, training=False)
    samples = data["data_samples"]
    samples[0].set_metainfo(dict(scale_factor=(0.5, 0.25), ori_shape=(4 * H, 2 * W)))
    with torch.no_grad():
        out = model.predict(data["inputs"], samples, rescale=True)
        head_inputs = model.forward_transformer(model.extract_feat(data["inputs"]), samples)
        scores, boxes = model.bbox_head(**head_inputs)
    assert len(out) == 2 and all(isinstance(s, DetDataSample) for s in out)
    pred = out[0].pred_instances
    assert len(pred) == 10 and pred.bboxes.shape == (10, 4) and set(pred.keys()) >= {"scores", "labels", "bboxes"}
    # the top box, recomputed from the last layer's outputs: input pixels -> x / 0.5, y / 0.25
    probs = scores[-1, 0].sigmoid()
    best = probs.flatten().argmax()
    query, label = best // NUM_CLASSES, best % NUM_CLASSES
    expected = bbox_cxcywh_to_xyxy(boxes[-1, 0, query]) * torch.tensor([W, H, W, H]) / torch.tensor([0.5, 0.25, 0.5, 0.25])
    assert torch.allclose(pred.scores[0], probs.max())
    assert pred.labels[0] == label
    assert torch.allclose(pred.bboxes[0], expected.clamp(min=0), atol=1e-3)
    assert pred.bboxes.min() >= 0 and pred.bboxes[:, 0::2].max() <= 2 * W + 1e-3 and pred.bboxes[:, 1::2].max() <= 4 * H + 1e-3
    assert pred.bboxes[:, 1::2].max() > H  # rescaled beyond the input's height


def test_look_forward_twice_returns_undetached_refined_boxes():
    """With look_forward_twice the returned references carry the gradient of the layer that
    refined them; without it they are detached (mmdet's decoder)."""
    torch.manual_seed(0)
    layer = model_cfg()["decoder"]["layer_cfg"]
    reg = torch.nn.ModuleList([torch.nn.Linear(C, 4) for _ in range(2)])
    inputs = dict(
        query=torch.randn(1, 5, C), query_pos=torch.randn(1, 5, C), value=torch.randn(1, 16 + 4, C), key_padding_mask=None,
        reference_points=torch.rand(1, 5, 4) * 0.5 + 0.25, spatial_shapes=torch.tensor([[4, 4], [2, 2]]),
        level_start_index=torch.tensor([0, 16]), valid_ratios=torch.ones(1, 2, 2), reg_branches=reg,
    )
    layer = copy.deepcopy(layer)
    layer["cross_attn_cfg"]["num_levels"] = 2
    twice = CoDeformableDetrTransformerDecoder(num_layers=2, layer_cfg=layer, post_norm_cfg=None, look_forward_twice=True)
    plain = CoDeformableDetrTransformerDecoder(num_layers=2, layer_cfg=layer, post_norm_cfg=None, look_forward_twice=False)
    plain.load_state_dict(twice.state_dict())
    states_t, refs_t = twice(**inputs)
    states_p, refs_p = plain(**inputs)
    assert torch.allclose(states_t, states_p) and torch.allclose(refs_t, refs_p)  # same values
    assert refs_t.requires_grad and not refs_p.requires_grad
    refs_t[0].sum().backward()
    assert reg[0].weight.grad.abs().sum() > 0
    assert reg[1].weight.grad is None or reg[1].weight.grad.abs().sum() == 0


def _tiny_head(**kwargs):
    head = CoDeformableDETRHead(
        num_classes=NUM_CLASSES, embed_dims=C, num_pred_layer=2, share_pred_layer=False, as_two_stage=False,
        loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0),
        loss_bbox=dict(type="L1Loss", loss_weight=5.0), loss_iou=dict(type="GIoULoss", loss_weight=2.0),
        train_cfg=dict(assigner=dict(type="HungarianAssigner", match_costs=[dict(type="FocalLossCost", weight=2.0)])), **kwargs,
    )
    head.init_weights()
    return head


def test_aux_targets_positives_padding_and_feature_lookup():
    head = _tiny_head(max_pos_coords=3, min_aux_queries=2)
    metas = [dict(img_shape=(64, 32)), dict(img_shape=(64, 32))]
    pyramid = [torch.arange(2 * C * 4.0).reshape(2, C, 2, 2), torch.arange(2 * C * 1.0).reshape(2, C, 1, 1) + 1000]
    # 5 locations, 2 anchors each -> 10 anchors per image
    coords = [torch.tensor([[0, 0, 8, 16]] * 10, dtype=torch.float) + torch.arange(10.0)[:, None] for _ in range(2)]
    bg = NUM_CLASSES
    labels = [torch.tensor([bg, 1, bg, bg, 2, bg, 3, bg, 0, bg]), torch.tensor([bg] * 9 + [2])]
    targets = [torch.full((10, 4), 4.0) + torch.arange(10.0)[:, None] for _ in range(2)]
    torch.manual_seed(0)
    out = head.get_aux_targets((coords, labels, targets, "atss"), pyramid, metas)
    assert out["labels"].shape == (2, 3)  # min(3, 4 positives) queries
    first = out["labels"][0]
    assert ((first >= 0) & (first < bg)).all()  # 4 positives > 3: a subset, no padding
    assert out["labels"][1, 0] == 2 and (out["labels"][1, 1:] == bg).all()  # 1 positive + 2 negatives
    assert out["bbox_weights"][1].sum(1).tolist() == [4, 0, 0] and out["bbox_weights"][0].sum() == 12
    assert torch.equal(out["label_weights"], torch.ones(2, 3))
    # anchor 9 of image 1 sits at location 4 (the 1x1 level); its target normalised (cx, cy, w, h)
    feat = torch.cat([f[1].reshape(C, -1).t() for f in pyramid])[4]
    assert torch.equal(out["feats"][1, 0], feat)
    assert torch.allclose(out["coords"][1, 0], torch.tensor([13 / 32, 17 / 64, 8 / 32, 16 / 64]))
    assert torch.allclose(out["bbox_targets"][1, 0], torch.tensor([13 / 32, 13 / 64, 0.0, 0.0]))
    # every chosen anchor of image 0 is a positive with its own feature
    for k in range(3):
        j = int(round(out["coords"][0, k, 0].item() * 32 - 4))
        assert labels[0][j] == out["labels"][0, k]
        assert torch.equal(out["feats"][0, k], torch.cat([f[0].reshape(C, -1).t() for f in pyramid])[j // 2])


def test_aux_targets_rcnn_uses_given_features_and_rejects_bad_input():
    head = _tiny_head()
    metas = [dict(img_shape=(50, 50))]
    coords, labels, targets = [torch.tensor([[0.0, 0, 10, 10], [5, 5, 20, 20]])], [torch.tensor([1, NUM_CLASSES])], [torch.zeros(2, 4)]
    feats = [torch.randn(2, C)]
    out = head.get_aux_targets((coords, labels, targets, feats, "rcnn"), [torch.zeros(1, C, 2, 2)], metas)
    assert out["labels"].shape == (1, 9)  # at least 9 queries (official), padded with the one negative
    assert torch.equal(out["feats"][0, 0], feats[0][0]) and all(torch.equal(f, feats[0][1]) for f in out["feats"][0, 1:])
    with pytest.raises(ValueError, match="RoI features"):
        check_pos_coords((coords, labels, targets, "rcnn"), 1)
    with pytest.raises(ValueError, match="kind"):
        check_pos_coords((coords, labels, targets, "fcos"), 1)
    with pytest.raises(ValueError, match="2 images|entries"):
        check_pos_coords((coords, labels, targets, "atss"), 2)
    with pytest.raises(ValueError, match="multiple"):
        head.get_aux_targets((coords, labels, targets, "atss"), [torch.zeros(1, C, 3, 1)], metas)
    with pytest.raises(ValueError, match="no negative"):
        head.get_aux_targets(([coords[0][:1]], [labels[0][:1]], [targets[0][:1]], "atss"), [torch.zeros(1, C, 1, 1)], metas)


def test_aux_loss_of_a_query_made_at_its_gt_box():
    """A customised positive query whose predicted box is exactly its target has zero box
    losses; its classification loss is the focal loss of its logits against its label."""
    head = _tiny_head()
    metas = [dict(img_shape=(40, 80))]
    target = torch.tensor([[0.25, 0.5, 0.2, 0.4], [0.6, 0.3, 0.1, 0.2]])  # cx cy w h, normalised
    aux_targets = dict(
        labels=torch.tensor([[2, NUM_CLASSES]]), label_weights=torch.ones(1, 2),
        bbox_targets=target[None], bbox_weights=torch.tensor([[[1.0] * 4, [0.0] * 4]]),
    )
    hidden = torch.randn(2, 1, 2, C)
    # references such that the regression branches (zero-initialised weights) output the targets
    for branch in head.reg_branches:
        torch.nn.init.zeros_(branch[-1].bias)
    references = [target[None], target[None], target[None]]
    losses = head.loss_aux(hidden, references, aux_targets, metas)
    assert set(losses) == {"loss_cls_aux", "loss_bbox_aux", "loss_iou_aux", "d0.loss_cls_aux", "d0.loss_bbox_aux", "d0.loss_iou_aux"}
    assert losses["loss_bbox_aux"].abs().item() < 1e-4 and losses["loss_iou_aux"].abs().item() < 1e-4
    assert losses["d0.loss_bbox_aux"].abs().item() < 1e-4
    # classification: sigmoid focal loss (alpha .25, gamma 2) over both queries, / 1 positive, x 2
    logits = head.cls_branches[1](hidden[1, 0])
    onehot = torch.zeros(2, NUM_CLASSES)
    onehot[0, 2] = 1
    p = logits.sigmoid()
    pt = torch.where(onehot == 1, p, 1 - p)
    alpha = torch.where(onehot == 1, 0.25, 0.75)
    focal = -(alpha * (1 - pt) ** 2 * torch.log(pt)).sum()
    assert torch.allclose(losses["loss_cls_aux"], 2.0 * focal, rtol=1e-4)
    # shifting the prediction away from the target makes the box losses positive
    shifted = [target[None] + 0.05] * 3
    moved = head.loss_aux(hidden, shifted, aux_targets, metas)
    assert moved["loss_bbox_aux"] > 0.1 and moved["loss_iou_aux"] > 0.01


def test_lambda_1_scales_the_aux_losses():
    hidden = torch.randn(2, 1, 9, C)
    refs = [torch.rand(1, 9, 4) * 0.5 + 0.25] * 3
    aux_targets = dict(labels=torch.tensor([[1] + [NUM_CLASSES] * 8]), label_weights=torch.ones(1, 9),
                       bbox_targets=torch.full((1, 9, 4), 0.4), bbox_weights=torch.zeros(1, 9, 4))
    aux_targets["bbox_weights"][0, 0] = 1
    torch.manual_seed(1)
    one = _tiny_head()
    torch.manual_seed(1)
    three = _tiny_head(lambda_1=3.0)
    a = one.loss_aux(hidden, refs, aux_targets, [dict(img_shape=(32, 32))])
    b = three.loss_aux(hidden, refs, aux_targets, [dict(img_shape=(32, 32))])
    for key in a:
        assert torch.allclose(b[key], 3 * a[key]), key


def test_config_errors():
    with pytest.raises(ValueError, match="as_two_stage"):
        MODELS.build(model_cfg(as_two_stage=False))
    cfg = model_cfg()
    cfg.pop("aux_rpn_head")
    with pytest.raises(ValueError, match="aux_rpn_head"):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match="max_pos_coords"):
        _tiny_head(max_pos_coords=0)


def test_official_head_pos_embed_is_a_scalar_per_head():
    assert build().head_pos_embed.weight.shape == (2, 1)
    assert build(official_head_pos_embed=False).head_pos_embed.weight.shape == (2, C)


def test_aux_head_without_pos_coords_is_an_error():
    cfg = model_cfg()
    cfg["aux_dense_heads"][0]["type"] = "ATSSHead"
    model = MODELS.build(cfg)
    model.init_weights()
    data = batch(model)
    with pytest.raises(ValueError, match="pos_coords"):
        model.loss(data["inputs"], data["data_samples"])
    model.with_pos_coord = False
    assert torch.isfinite(total_loss(model.loss(data["inputs"], data["data_samples"])))


def test_aux_query_count_follows_the_positives():
    """Each aux head's queries are capped at max_pos_coords and the decoder runs on them."""
    model = build(bbox_head=dict(model_cfg()["bbox_head"], max_pos_coords=5))
    data = batch(model)
    calls = []
    original = model.bbox_head.get_aux_targets

    def record(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append(out["labels"].shape)
        return out

    model.bbox_head.get_aux_targets = record
    model.loss(data["inputs"], data["data_samples"])
    assert calls == [(2, 9), (2, 9)]  # max(9, min(5, positives)) = 9 queries per image
    calls.clear()
    model.bbox_head.min_aux_queries = 1
    model.loss(data["inputs"], data["data_samples"])
    assert len(calls) == 2 and all(shape[0] == 2 and 1 <= shape[1] <= 5 for shape in calls)
    assert any(shape[1] == 5 for shape in calls)  # ATSS has more than 5 positives: capped


def test_with_the_plugins_co_detr_aux_heads():
    """The detector with the plugin's CoStandardRoIHead / CoATSSHead (instead of this file's
    stand-ins): losses of every part, finite, and gradients to the aux heads and backbone."""
    cfg = model_cfg()
    cfg["aux_roi_heads"][0]["type"] = "CoStandardRoIHead"
    cfg["aux_dense_heads"][0]["type"] = "CoATSSHead"
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    data = batch(model)
    losses = model.loss(data["inputs"], data["data_samples"])
    assert {"loss_cls0", "loss_cls1", "loss_cls_aux0", "loss_cls_aux1", "loss_rpn_cls"} <= set(losses)
    loss = total_loss(losses)
    assert torch.isfinite(loss)
    loss.backward()
    assert_gradients_reach(model.aux_roi_heads[0].bbox_head.fc_cls, model.aux_dense_heads[0].atss_cls, model.aux_pos_trans[0],
                           model.aux_pos_trans[1], model.bbox_head.cls_branches[0], model.backbone.conv1)


def test_matched_losses_equal_mmdets_deformable_detr_head():
    """Moving the loss computation into ``loss_by_targets`` changes nothing: the matched
    losses equal mmdet's ``DETRHead.loss_by_feat_single`` on the same outputs."""
    from mmdet.models.dense_heads import DeformableDETRHead

    head = _tiny_head()
    torch.manual_seed(3)
    scores, boxes = torch.randn(2, 7, NUM_CLASSES), torch.rand(2, 7, 4) * 0.5 + 0.2
    gts = [InstanceData(bboxes=torch.tensor([[2.0, 3, 20, 30], [10, 10, 40, 28]]), labels=torch.tensor([1, 3])),
           InstanceData(bboxes=torch.tensor([[5.0, 5, 15, 25]]), labels=torch.tensor([0]))]
    metas = [dict(img_shape=(32, 48)), dict(img_shape=(32, 48))]
    ours = head.loss_by_feat_single(scores, boxes, gts, metas)
    theirs = DeformableDETRHead.loss_by_feat_single(head, scores, boxes, gts, metas)
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b)
    assert all(x > 0 for x in ours)


def test_detector_learns_a_fixed_batch():
    """A few AdamW steps on one batch lower every part of the loss (the one-to-one
    classification and boxes, and the aux queries')."""
    model = build()
    data = batch(model, num_items=(2, 1))
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first = None
    for _ in range(25):
        losses = model.loss(data["inputs"], data["data_samples"])
        loss = total_loss(losses)
        first = first or {k: v.item() for k, v in losses.items() if k in ("loss_cls", "loss_bbox", "loss_cls_aux1", "loss_bbox_aux1")} | {"total": loss.item()}
        optim.zero_grad()
        loss.backward()
        optim.step()
    last = {k: losses[k].item() for k in first if k != "total"} | {"total": loss.item()}
    assert last["total"] < 0.6 * first["total"]
    assert last["loss_bbox"] < first["loss_bbox"] and last["loss_bbox_aux1"] < first["loss_bbox_aux1"]


def test_padded_batch_of_different_image_sizes():
    """Images of different sizes (padding masks, valid ratios < 1): loss and predict run,
    and the aux queries' boxes are normalised by each image's own size."""
    model = build()
    data = batch(model, image_shapes=[(3, H, W), (3, 96, 128)])
    assert data["data_samples"][1].img_shape == (96, 128) and data["inputs"].shape[-2:] == (H, W)
    seen = []
    original = model.bbox_head.get_aux_targets
    model.bbox_head.get_aux_targets = lambda *a, **k: seen.append(original(*a, **k)) or seen[-1]
    losses = model.loss(data["inputs"], data["data_samples"])
    assert torch.isfinite(total_loss(losses))
    gt_small = data["data_samples"][1].gt_instances.bboxes
    for out in seen:  # the small image's box targets, scaled back by its own size, are its gt boxes
        pos = out["bbox_weights"][1, :, 0] > 0
        assert pos.any()
        pixels = bbox_cxcywh_to_xyxy(out["bbox_targets"][1, pos]) * torch.tensor([128.0, 96.0, 128.0, 96.0])
        assert (torch.cdist(pixels, gt_small).min(1).values < 1e-3).all()
    model.eval()
    with torch.no_grad():
        out = model.predict(data["inputs"], data["data_samples"], rescale=False)
        scores, boxes = model(data["inputs"], data["data_samples"], mode="tensor")
    assert scores.shape == (2, 2, 20, NUM_CLASSES) and boxes.shape == (2, 2, 20, 4)
    small = out[1].pred_instances.bboxes
    assert small[:, 0::2].max() <= 128 and small[:, 1::2].max() <= 96


def test_aux_query_made_at_a_gt_box_through_the_decoder():
    """End to end from ``pos_coords``: an 'atss' positive whose anchor *is* its gt box, with
    the regression branches at zero, is predicted exactly at the box on every decoder layer
    (zero L1 / GIoU); moving the anchor off the box makes the box losses positive."""
    model = build()
    data = batch(model, num_items=(1, 1))
    samples = data["data_samples"]
    metas = [s.metainfo for s in samples]
    for branch in model.bbox_head.reg_branches:
        torch.nn.init.zeros_(branch[-1].weight)
        torch.nn.init.zeros_(branch[-1].bias)
    with torch.no_grad():
        feats = model.extract_feat(data["inputs"])
        _, dec_in = model.forward_transformer(feats, samples, return_memory=True)
        pyramid = model.aux_feature_pyramid(dec_in["memory"], dec_in["spatial_shapes"])
        locations = sum(f.shape[-2] * f.shape[-1] for f in pyramid)

        def losses_for(shift):
            coords, labels, targets = [], [], []
            for s in samples:
                gt = s.gt_instances.bboxes[0]
                box = torch.zeros(locations, 4) + torch.tensor([0.0, 0.0, 8.0, 8.0])  # one anchor per location
                box[3] = gt + shift
                label = torch.full((locations,), NUM_CLASSES)
                label[3] = s.gt_instances.labels[0]
                target = torch.zeros(locations, 4)
                target[3] = gt
                coords.append(box), labels.append(label), targets.append(target)
            aux_targets = model.bbox_head.get_aux_targets((coords, labels, targets, "atss"), pyramid, metas)
            query_pos, query, refs = model.aux_queries(aux_targets, 1)
            dec_out = model.forward_decoder(query=query, query_pos=query_pos, reference_points=refs, **{
                k: dec_in[k] for k in ("memory", "memory_mask", "spatial_shapes", "level_start_index", "valid_ratios")})
            return model.bbox_head.loss_aux(**dec_out, aux_targets=aux_targets, batch_img_metas=metas)

        exact, shifted = losses_for(0.0), losses_for(torch.tensor([6.0, -4.0, 6.0, 5.0]))
    for key in ("loss_bbox_aux", "loss_iou_aux", "d0.loss_bbox_aux", "d0.loss_iou_aux"):
        assert exact[key].abs().item() < 1e-4, key
        assert shifted[key].item() > 0.01, key
    assert exact["loss_cls_aux"] > 0


def test_init_weights_reaches_the_aux_heads_own_init():
    """``init_weights`` applies every aux head's own ``init_cfg`` (ATSS: classification
    bias for prior 0.01; R-CNN: fc_reg ~ N(0, 0.001)), as the official detector calls each
    head's ``init_weights``."""
    from mmengine.model import bias_init_with_prob

    model = build()
    atss = model.aux_dense_heads[0].atss_cls.bias
    assert torch.allclose(atss, torch.full_like(atss, bias_init_with_prob(0.01)))
    fc_reg = model.aux_roi_heads[0].bbox_head.fc_reg.weight
    assert 0.0005 < fc_reg.std().item() < 0.002


# ------------------------------------------------- the official code, transcribed for the checks below
# Sense-X/Co-DETR (mmdet 2.x): projects/models/transformer.py, co_deformable_detr_head.py and the
# mmdet 2.x DeformableDetrTransformer they build on, written out on plain tensors so that the port
# is compared with the official formulas, not with itself.
def _official_inverse_sigmoid(x, eps=1e-5):
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def _official_proposal_pos_embed(proposals, embed_dims, temperature=10000):
    """CoDeformableDetrTransformer.get_proposal_pos_embed (num_pos_feats = embed_dims // 2)."""
    num_pos_feats = embed_dims // 2
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32)
    dim_t = temperature ** (2 * (dim_t // 2) / num_pos_feats)
    pos = (proposals.sigmoid() * 2 * math.pi)[:, :, :, None] / dim_t
    return torch.stack((pos[:, :, :, 0::2].sin(), pos[:, :, :, 1::2].cos()), dim=4).flatten(2)


def _official_gen_encoder_output_proposals(model, memory, mask, spatial_shapes):
    """mmdet 2.x DeformableDetrTransformer.gen_encoder_output_proposals (enc_output = memory_trans_fc)."""
    n = memory.shape[0]
    proposals, cur = [], 0
    for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
        level_mask = mask[:, cur : cur + h * w].view(n, h, w, 1)
        valid_h, valid_w = (~level_mask[:, :, 0, 0]).sum(1), (~level_mask[:, 0, :, 0]).sum(1)
        grid_y, grid_x = torch.meshgrid(torch.linspace(0, h - 1, h), torch.linspace(0, w - 1, w), indexing="ij")
        grid = torch.cat([grid_x.unsqueeze(-1), grid_y.unsqueeze(-1)], -1)
        scale = torch.cat([valid_w.unsqueeze(-1), valid_h.unsqueeze(-1)], 1).view(n, 1, 1, 2)
        grid = (grid.unsqueeze(0).expand(n, -1, -1, -1) + 0.5) / scale
        proposals.append(torch.cat((grid, torch.ones_like(grid) * 0.05 * (2.0**lvl)), -1).view(n, -1, 4))
        cur += h * w
    proposals = torch.cat(proposals, 1)
    valid = ((proposals > 0.01) & (proposals < 0.99)).all(-1, keepdim=True)
    proposals = torch.log(proposals / (1 - proposals))
    proposals = proposals.masked_fill(mask.unsqueeze(-1), float("inf")).masked_fill(~valid, float("inf"))
    output_memory = memory.masked_fill(mask.unsqueeze(-1), 0.0).masked_fill(~valid, 0.0)
    return model.memory_trans_norm(model.memory_trans_fc(output_memory)), proposals


def test_two_stage_mixed_selection_equals_the_official_transformer():
    """pre_decoder on a padded batch = the official CoDeformableDetrTransformer.forward's
    two-stage branch with mixed selection: proposals (valid mask, inf), the encoder class /
    box branches (index num_layers), top-k by the first class logit, detached references,
    positional query = first half of pos_trans(sine(embed_dims // 2)), content = the learned
    query_embedding."""
    model = build()
    data = batch(model, image_shapes=[(3, H, W), (3, 96, 128)])
    samples = data["data_samples"]
    enc_in, _ = model.pre_transformer(model.extract_feat(data["inputs"]), samples)
    enc_out = model.forward_encoder(**enc_in)
    memory, mask, shapes = enc_out["memory"], enc_out["memory_mask"], enc_out["spatial_shapes"]
    assert mask is not None and mask.any()
    dec_in, head_in = model.pre_decoder(**enc_out)

    out_memory, out_proposals = _official_gen_encoder_output_proposals(model, memory, mask, shapes)
    num_layers = model.decoder.num_layers
    enc_class = model.bbox_head.cls_branches[num_layers](out_memory)
    enc_coord_unact = model.bbox_head.reg_branches[num_layers](out_memory) + out_proposals
    topk = torch.topk(enc_class[..., 0], model.num_queries, dim=1)[1]
    topk_coords_unact = torch.gather(enc_coord_unact, 1, topk.unsqueeze(-1).repeat(1, 1, 4)).detach()
    pos_trans_out = model.pos_trans_norm(model.pos_trans_fc(_official_proposal_pos_embed(topk_coords_unact, C)))
    query_pos, _ = torch.split(pos_trans_out, C, dim=2)
    query = model.query_embedding.weight.unsqueeze(0).expand(2, -1, -1)

    torch.testing.assert_close(dec_in["reference_points"], topk_coords_unact.sigmoid())
    assert not dec_in["reference_points"].requires_grad
    torch.testing.assert_close(dec_in["query_pos"], query_pos)
    torch.testing.assert_close(dec_in["query"], query)
    assert dec_in["memory"] is memory
    torch.testing.assert_close(head_in["enc_outputs_class"], enc_class)
    torch.testing.assert_close(head_in["enc_outputs_coord"], enc_coord_unact.sigmoid())


def test_aux_pyramid_and_queries_equal_the_official_forward_aux():
    """The aux heads' pyramid = the official query head's ``outs`` (the encoder memory per
    level + ``downsample`` of the last level); the customised positive queries = the official
    transformer ``forward_aux`` (pos / content halves of aux_pos_trans(sine), the content
    feature projection, head_pos_embed; references = the boxes themselves)."""
    model = build()
    data = batch(model)
    _, dec_in = model.forward_transformer(model.extract_feat(data["inputs"]), data["data_samples"], return_memory=True)
    memory, shapes = dec_in["memory"], dec_in["spatial_shapes"]
    pyramid = model.aux_feature_pyramid(memory, shapes)
    enc_outputs, outs, start = memory.permute(1, 0, 2), [], 0  # official layout: (sum HW, bs, C)
    for h, w in shapes.tolist():
        outs.append(enc_outputs[start : start + h * w].permute(1, 2, 0).contiguous().reshape(2, C, h, w))
        start += h * w
    outs.append(model.downsample(outs[-1]))
    assert len(pyramid) == len(outs) == 5
    for ours, official in zip(pyramid, outs):
        torch.testing.assert_close(ours, official)
    assert pyramid[-1].shape[-2:] == tuple((s + 1) // 2 for s in pyramid[-2].shape[-2:])  # stride 2, padding 1
    assert isinstance(model.downsample[0], torch.nn.Conv2d) and model.downsample[0].kernel_size == (3, 3)
    assert isinstance(model.downsample[1], torch.nn.GroupNorm) and model.downsample[1].num_groups == 32

    torch.manual_seed(1)
    coords = torch.cat([torch.rand(2, 7, 2), torch.rand(2, 7, 2) * 1.2], -1)  # some boxes taller / wider than the image
    feats = torch.randn(2, 7, C)
    for k in range(2):
        query_pos, query, refs = model.aux_queries(dict(coords=coords, feats=feats), k)
        pos_trans_out = model.aux_pos_trans_norm[k](model.aux_pos_trans[k](_official_proposal_pos_embed(_official_inverse_sigmoid(coords), C)))
        official_pos, official_query = torch.split(pos_trans_out, C, dim=2)
        official_query = official_query + model.aux_pos_feats_norm[k](model.aux_pos_feats_trans[k](feats))
        official_pos = official_pos + model.head_pos_embed.weight[k]
        torch.testing.assert_close(query_pos, official_pos)
        torch.testing.assert_close(query, official_query)
        assert refs is coords


def _official_get_aux_targets(pos_coords, img_metas, mlvl_feats, num_classes, max_pos_coords):
    """CoDeformDETRHead.get_aux_targets, use_zero_padding=False (every official config)."""
    coords, labels, targets = pos_coords[:3]
    head_name = pos_coords[-1]
    bs, c = len(coords), mlvl_feats[0].shape[1]
    max_num_coords, all_feats = 0, []
    for i in range(bs):
        all_feats.append(torch.cat([feat[i].reshape(c, -1).transpose(1, 0) for feat in mlvl_feats], dim=0))
        max_num_coords = max(max_num_coords, len(((labels[i] >= 0) & (labels[i] < num_classes)).nonzero().squeeze(1)))
    max_num_coords = max(9, min(max_pos_coords, max_num_coords))
    label_weights = coords[0].new_ones([bs, max_num_coords])
    bbox_weights = coords[0].new_zeros([bs, max_num_coords, 4])
    aux_coords, aux_labels, aux_targets, aux_feats = [], [], [], []
    for i in range(bs):
        coord, label, target = coords[i], labels[i], targets[i]
        if "rcnn" in head_name:
            feats, per_point = pos_coords[-2][i], 1
        else:
            feats = all_feats[i]
            per_point = coord.shape[0] // feats.shape[0]
        feats = feats.unsqueeze(1).repeat(1, per_point, 1).reshape(feats.shape[0] * per_point, feats.shape[-1])
        img_h, img_w = img_metas[i]["img_shape"][:2]
        factor = coord.new_tensor([img_w, img_h, img_w, img_h]).unsqueeze(0)
        pos_inds = ((label >= 0) & (label < num_classes)).nonzero().squeeze(1)
        neg_inds = (label == num_classes).nonzero().squeeze(1)
        if pos_inds.shape[0] > max_num_coords:
            pos_inds = pos_inds[torch.randperm(pos_inds.shape[0])[:max_num_coords]]
        coord = bbox_xyxy_to_cxcywh(coord[pos_inds] / factor)
        label, target, feat = label[pos_inds], bbox_xyxy_to_cxcywh(target[pos_inds] / factor), feats[pos_inds]
        bbox_weights[i][: len(label)] = 1
        if coord.shape[0] < max_num_coords:
            neg_inds = neg_inds[torch.randperm(neg_inds.shape[0])[: max_num_coords - coord.shape[0]]]
            coord = torch.cat((coord, bbox_xyxy_to_cxcywh(coords[i][neg_inds] / factor)), dim=0)
            label = torch.cat((label, labels[i][neg_inds]), dim=0)
            target = torch.cat((target, bbox_xyxy_to_cxcywh(targets[i][neg_inds] / factor)), dim=0)
            feat = torch.cat((feat, feats[neg_inds]), dim=0)
        aux_coords.append(coord.unsqueeze(0))
        aux_labels.append(label.unsqueeze(0))
        aux_targets.append(target.unsqueeze(0))
        aux_feats.append(feat.unsqueeze(0))
    cat = lambda xs: torch.cat(xs, dim=0)  # noqa: E731
    return dict(
        coords=cat(aux_coords), labels=cat(aux_labels), bbox_targets=cat(aux_targets), feats=cat(aux_feats),
        label_weights=label_weights, bbox_weights=bbox_weights,
    )


def _official_loss_single_aux(head, cls_scores, bbox_preds, labels, label_weights, bbox_targets, bbox_weights, img_metas, lambda_1):
    """CoDeformDETRHead.loss_single_aux (single process: reduce_mean is the identity)."""
    num_imgs, num_q = cls_scores.shape[:2]
    labels, label_weights = labels.reshape(-1), label_weights.reshape(-1)
    bbox_targets, bbox_weights = bbox_targets.reshape(-1, 4), bbox_weights.reshape(-1, 4)
    num_total_pos = len(((labels >= 0) & (labels < head.num_classes)).nonzero().squeeze(1))
    num_total_neg = num_imgs * num_q - num_total_pos
    cls_avg_factor = max(num_total_pos * 1.0 + num_total_neg * head.bg_cls_weight, 1)
    loss_cls = head.loss_cls(cls_scores.reshape(-1, head.cls_out_channels), labels, label_weights, avg_factor=cls_avg_factor)
    num_total_pos = max(float(num_total_pos), 1.0)
    factors = torch.cat([bbox_preds.new_tensor([m["img_shape"][1], m["img_shape"][0]] * 2).unsqueeze(0).repeat(num_q, 1) for m in img_metas])
    bbox_preds = bbox_preds.reshape(-1, 4)
    loss_iou = head.loss_iou(bbox_cxcywh_to_xyxy(bbox_preds) * factors, bbox_cxcywh_to_xyxy(bbox_targets) * factors, bbox_weights, avg_factor=num_total_pos)
    loss_bbox = head.loss_bbox(bbox_preds, bbox_targets, bbox_weights, avg_factor=num_total_pos)
    return loss_cls * lambda_1, loss_bbox * lambda_1, loss_iou * lambda_1


@pytest.mark.parametrize("kind", ["atss", "rcnn"])
def test_aux_targets_and_losses_equal_the_official_code(kind):
    """get_aux_targets (same random draws: positives beyond max_pos_coords subsampled, the
    padding drawn from the negatives) and loss_aux on every decoder layer equal the official
    get_aux_targets / loss_single_aux / loss_aux."""
    torch.manual_seed(0)
    head = _tiny_head(max_pos_coords=5, lambda_1=0.7)
    metas = [dict(img_shape=(64, 96)), dict(img_shape=(48, 80))]
    pyramid = [torch.randn(2, C, 4, 6), torch.randn(2, C, 2, 3)]  # 30 locations
    per_image = 60 if kind == "atss" else 40  # atss: 2 anchors per location
    coords, labels, targets, feats = [], [], [], []
    for i, num_pos in enumerate((8, 2)):  # image 0: subsampled to 5; image 1: padded to 9 (the minimum)
        xy = torch.rand(per_image, 2) * 40
        coords.append(torch.cat([xy, xy + torch.rand(per_image, 2) * 30 + 2], 1))
        label = torch.full((per_image,), NUM_CLASSES)
        label[torch.randperm(per_image)[:num_pos]] = torch.randint(NUM_CLASSES, (num_pos,))
        labels.append(label)
        targets.append(coords[-1] + torch.randn(per_image, 4))
        feats.append(torch.randn(per_image, C))
    pos_coords = (coords, labels, targets, "atss") if kind == "atss" else (coords, labels, targets, feats, "rcnn")
    torch.manual_seed(3)
    ours = head.get_aux_targets(pos_coords, pyramid, metas)
    torch.manual_seed(3)
    official = _official_get_aux_targets(pos_coords, metas, pyramid, NUM_CLASSES, max_pos_coords=5)
    assert ours["labels"].shape == (2, 9)
    for key, value in official.items():
        torch.testing.assert_close(ours[key], value, msg=key)

    hidden = torch.randn(2, 2, 9, C)  # 2 decoder layers
    references = [ours["coords"], torch.rand(2, 9, 4) * 0.5 + 0.25]
    losses = head.loss_aux(hidden, references, ours, metas)
    all_cls, all_boxes = head(hidden, references)
    for layer, prefix in ((0, "d0."), (1, "")):
        expected = _official_loss_single_aux(
            head, all_cls[layer], all_boxes[layer], official["labels"], official["label_weights"], official["bbox_targets"],
            official["bbox_weights"], metas, lambda_1=0.7,
        )
        for name, value in zip(("loss_cls_aux", "loss_bbox_aux", "loss_iou_aux"), expected):
            torch.testing.assert_close(losses[prefix + name], value, msg=prefix + name)
    assert set(losses) == {p + n for p in ("", "d0.") for n in ("loss_cls_aux", "loss_bbox_aux", "loss_iou_aux")}


def test_init_of_the_added_parameters_follows_the_official_code():
    """The official transformer's init_weights xavier-initialises every >1-dimensional
    parameter it owns (aux_pos_trans, pos_feats_trans, head_pos_embed); the mixed-selection
    query_embedding (official query head) keeps N(0, 1) and the downsample conv (official
    query head) PyTorch's default."""
    model = build()
    for module in (*model.aux_pos_trans, *model.aux_pos_feats_trans):
        fan_in, fan_out = module.weight.shape[1], module.weight.shape[0]
        xavier, default = math.sqrt(6 / (fan_in + fan_out)), 1 / math.sqrt(fan_in)
        assert default < module.weight.abs().max().item() <= xavier
    assert model.head_pos_embed.weight.abs().max().item() <= math.sqrt(6 / (1 + 2))
    assert 0.85 < model.query_embedding.weight.std().item() < 1.15
    conv = model.downsample[0]
    assert conv.weight.abs().max().item() <= 1 / math.sqrt(C * 9)
    assert torch.equal(model.downsample[1].weight, torch.ones(C)) and torch.equal(model.downsample[1].bias, torch.zeros(C))
