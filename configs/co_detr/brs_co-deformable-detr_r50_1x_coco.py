# BRS-DETR: Co-DETR (co-deformable-detr_r50_1x_coco.py: same detector, data, schedule, batch
# 8 GPUs x 2, AdamW lr 2e-4) trained by the Bucketed Rank & Sort Loss, ResNet-50, 12 epochs.
# Feeds: Bucketed README Co-DETR table, "BRS-DETR" R-50 (50.1 AP).
# Official: none.  The Bucketed repository (blisgard/BucketedRankingBasedLosses) reports the
# row but publishes no BRS-DETR config or code; this is the project's reconstruction, each
# choice below a variable of this file (the README's BRS-DETR section lists them):
#  * one-to-one head (RankBasedCoDeformableDETRHead): BRS Loss (delta 0.5, the Bucketed repository's
#    default delta_RS, which none of its BRS configs changes) on all (query, class) logits of the batch, per
#    decoder layer, the encoder proposals and the auxiliary queries; positives = the
#    Hungarian-matched queries with their IoU as label; L1 and GIoU each score-weighted and
#    value-balanced to the BRS Loss (the RS detectors' recipe);
#  * Hungarian matching unchanged (Focal + L1 + GIoU costs, Co-DETR's): BRS changes the loss,
#    not the assignment (match_costs below);
#  * auxiliary heads: the project's RS heads with BRS Loss -- RS-ATSS's head on Co-DETR's ATSS
#    architecture and anchors, RS-R-CNN's RPN (no sampler, head weight 0.2 relative to the
#    R-CNN) and R-CNN (all proposals, no sampler, class-wise sigmoid classifier); their losses
#    have no per-loss weights, so each whole head is weighted by Co-DETR's auxiliary weight
#    num_dec_layer * lambda_2 = 12 (the RPN by 0.2 x 12).
_base_ = './co-deformable-detr_r50_1x_coco.py'

brs = dict(type='BucketedRankSortLoss', delta=0.5)
brs_aux_weight = 6 * 2.0  # Co-DETR's num_dec_layer * lambda_2 (the base's aux_weight)
brs_rpn_weight = 0.2 * brs_aux_weight  # RS-R-CNN's RPN weight 0.2, relative to its R-CNN
brs_bbox_weighting = 'score'
brs_task_balance = 'value'
match_costs = [
    dict(type='FocalLossCost', weight=2.0),
    dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
    dict(type='IoUCost', iou_mode='giou', weight=2.0),
]

model = dict(
    bbox_head=dict(
        type='RankBasedCoDeformableDETRHead',
        loss_cls=None,  # unused: the ranking loss classifies (a sigmoid Focal Loss is built for the head's layout)
        loss_rank=brs,
        bbox_weighting=brs_bbox_weighting,
        task_balance=brs_task_balance,
    ),
    aux_rpn_head=dict(
        type='RankBasedRPNHead',
        bbox_coder=dict(target_stds=[0.1, 0.1, 0.2, 0.2]),  # RS-R-CNN's RPN coder
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),  # unused (ranking loss)
        loss_bbox=dict(_delete_=True, type='GIoULoss', reduction='none'),
        loss_rank=brs,
        head_weight=brs_rpn_weight,
        train_cfg=dict(sampler=dict(_delete_=True, type='PseudoSampler')),
    ),
    aux_roi_heads=[
        dict(
            type='RankBasedCoStandardRoIHead',
            loss_weight=brs_aux_weight,
            bbox_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                out_channels=256,
                featmap_strides=[8, 16, 32, 64],
                finest_scale=112,
            ),
            bbox_head=dict(
                type='RankBasedShared2FCBBoxHead',
                in_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=80,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=False,
                reg_decoded_bbox=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                loss_bbox=dict(type='GIoULoss', reduction='none'),
                loss_rank=brs,
            ),
            train_cfg=dict(
                assigner=dict(
                    type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5, match_low_quality=False, ignore_iof_thr=-1
                ),
                # RS-R-CNN's "no sampler" (every proposal and the ground truths), as its official config writes it
                sampler=dict(type='RandomSampler', num=1e10, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True),
                pos_weight=-1,
                debug=False,
            ),
            test_cfg=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100),
        )
    ],
    aux_dense_heads=[
        dict(
            type='RankBasedCoATSSHead',
            loss_weight=brs_aux_weight,
            num_classes=80,
            in_channels=256,
            stacked_convs=1,
            feat_channels=256,
            anchor_generator=dict(
                type='AnchorGenerator', ratios=[1.0], octave_base_scale=8, scales_per_octave=1, strides=[8, 16, 32, 64, 128]
            ),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2]),
            loss_bbox=dict(type='GIoULoss', reduction='none'),
            loss_rank=brs,
            box_weighting=brs_bbox_weighting,
            task_balance=brs_task_balance,
            train_cfg=dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1, pos_weight=-1, debug=False),
            test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.0, nms=dict(type='nms', iou_threshold=0.6), max_per_img=100),
        )
    ],
    train_cfg=dict(assigner=dict(type='HungarianAssigner', match_costs=match_costs)),
)
