# RS-Mask R-CNN, the model only (ResNet-50 FPN, COCO's 80 classes): mmdet's Mask R-CNN whose RPN,
# box head and mask head are trained by RS Loss (RS paper Sec. 6.2, App. C): RankBasedRPNHead
# (RS Loss + GIoU, no sampler, head weight 0.2), RankBasedShared2FCBBoxHead (sigmoid classifier
# trained by RS Loss, GIoU on decoded boxes, every RoI kept), RankBasedFCNMaskHead (Dice Loss,
# score-weighted, value-balanced) on at most 200 positive RoIs (RankBasedStandardRoIHead).
# The experiment configs next to this file combine it with mmdet's dataset, schedule and runtime
# bases, as mmdet's own mask-rcnn_r50_fpn_1x_coco.py does with _base_/models/mask-rcnn_r50_fpn.py.
# Official: RankSortLoss configs/ranksort_loss/ranksort_mask_rcnn_r50_fpn_1x_coco.py (model part).
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
custom_imports = dict(imports=['rankrepro.models', 'rankrepro.evaluation.metrics'], allow_failed_imports=False)

model = dict(
    rpn_head=dict(
        type='RankBasedRPNHead',
        loss_rank=dict(type='RankSortLoss', delta=0.5),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0], target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_bbox=dict(_delete_=True, type='GIoULoss', reduction='none'),
        head_weight=0.2,
    ),
    roi_head=dict(
        type='RankBasedStandardRoIHead',
        # the official RankBasedStandardRoIHead samples 200 of the positive RoIs for the mask head
        # (resample_for_mask_head, max_mask=200) in every RS Mask R-CNN config (RS paper Sec. 6.2.3)
        max_masks=200,
        bbox_head=dict(
            type='RankBasedShared2FCBBoxHead',
            loss_rank=dict(type='RankSortLoss', delta=0.5),
            # sigmoid: num_classes outputs, no background column
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
            reg_decoded_bbox=True,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0], target_stds=[0.1, 0.1, 0.2, 0.2]),
            loss_bbox=dict(_delete_=True, type='GIoULoss', reduction='none'),
        ),
        mask_head=dict(type='RankBasedFCNMaskHead'),
    ),
    train_cfg=dict(
        # no RPN sampler: every anchor is ranked
        rpn=dict(sampler=dict(_delete_=True, type='PseudoSampler')),
        # no R-CNN sampler, written as the official configs do (a RandomSampler that keeps every RoI)
        rcnn=dict(sampler=dict(type='RandomSampler', num=1e10, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True)),
    ),
    # the official score threshold (RS paper App. C.6.2, Table A.19: ranking-based losses give
    # larger scores; 0.40 instead of 0.05 leaves oLRP unchanged and AP within 0.01)
    test_cfg=dict(rcnn=dict(score_thr=0.40)),
)

# Smoke variant only (ResNet-18 from scratch, 4 images, the paper's lr meant for 16 images on an
# ImageNet-initialised backbone): gradients clipped at norm 35.  Unclipped, the smoke RS-R-CNN+
# diverged once after ~65 iterations (R-CNN fc gradient norm 29 -> 10547 in 11 iterations, then
# NaN boxes); resumed from the same checkpoint with clipping it stayed stable.  Paper scale: no
# clipping, as the official configs.
smoke_overrides = dict(optim_wrapper=dict(clip_grad=dict(max_norm=35, norm_type=2)))
