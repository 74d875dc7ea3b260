# RS-Cascade R-CNN: Cascade R-CNN (3 R-CNN stages, IoU 0.5 / 0.6 / 0.7) trained by RS Loss
# in RPN and every R-CNN stage, ResNet-50, 12 epochs, 16 images per batch (4 GPUs x 4),
# lr 0.012.  As RS-R-CNN: no samplers (RPN on all anchors; each R-CNN on all proposals
# plus the ground truths), class-wise sigmoid classifiers, score-weighted GIoU Loss, RPN
# head weight 0.2; the stages are NOT weighted differently (stage loss weights 1 / 1 / 1,
# RS paper App. C.2); every stage keeps the deltas' stds (0.1, 0.1, 0.2, 0.2) and a
# class-agnostic regressor, as the official config.  Test: score threshold 0.40.
# Feeds: RS paper Table A.15 ("RS Cascade R-CNN"), Table A.19 (Cascade R-CNN, RS Loss);
# RS README "RS-Cascade R-CNN" R-50; Bucketed README Cascade R-CNN "RS" (the Bucketed
# authors' rerun).
# Official: RankSortLoss configs/ranksort_loss/ranksort_cascade_rcnn_r50_fpn_1x_coco.py
# (the RS README's link; the copy in configs/cascade_rcnn/ tests at score_thr 0.05, keeps mmdet's
# 2 images per GPU and saves checkpoints every 6 epochs).
#
# Proposals per image that train the R-CNNs: the RS paper (Sec. 6.1) says m = 2000 for
# Cascade R-CNN (mmdet's default), but the official config keeps 1000 (rpn_proposal
# max_num 1000), and so, per the issue that asked for this config, does its published
# training log.  The default follows the published run; set rcnn_train_proposals = 2000 here (or override
# model.train_cfg.rpn_proposal.max_per_img) for the paper's text.
rcnn_train_proposals = 1000

_base_ = 'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['rankrepro.models', 'rankrepro.evaluation.metrics'], allow_failed_imports=False)

model = dict(
    rpn_head=dict(
        type='RankBasedRPNHead',
        bbox_coder=dict(target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_bbox=dict(_delete_=True, type='GIoULoss', reduction='none'),
        loss_rank=dict(type='RankSortLoss', delta=0.5),
        head_weight=0.2,
    ),
    roi_head=dict(
        type='RankBasedCascadeRoIHead',
        stage_loss_weights=[1, 1, 1],
        bbox_head=[
            dict(
                type='RankBasedShared2FCBBoxHead',
                in_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=80,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0], target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=True,
                reg_decoded_bbox=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                loss_bbox=dict(type='GIoULoss', reduction='none'),
                loss_rank=dict(type='RankSortLoss', delta=0.5),
            )
            for _stage in range(3)
        ],
    ),
    train_cfg=dict(
        rpn=dict(sampler=dict(_delete_=True, type='PseudoSampler')),
        rpn_proposal=dict(max_per_img=rcnn_train_proposals),
        rcnn=[
            dict(
                assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou, min_pos_iou=iou, match_low_quality=False, ignore_iof_thr=-1),
                sampler=dict(type='RandomSampler', num=1e10, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True),
                pos_weight=-1,
                debug=False,
            )
            for iou in (0.5, 0.6, 0.7)
        ],
    ),
    test_cfg=dict(rcnn=dict(score_thr=0.40)),
)
train_dataloader = dict(batch_size=4, num_workers=4)
optim_wrapper = dict(optimizer=dict(lr=0.012))
auto_scale_lr = dict(enable=False, base_batch_size=16)
val_evaluator = dict(type='CocoOLRPMetric')
test_evaluator = val_evaluator

# Smoke variant only (ResNet-18 from scratch, 4 images, the paper's lr meant for 16 images on an
# ImageNet-initialised backbone): gradients clipped at norm 35.  Unclipped, the smoke RS-R-CNN+
# diverged once after ~65 iterations (R-CNN fc gradient norm 29 -> 10547 in 11 iterations, then
# NaN boxes); resumed from the same checkpoint with clipping it stayed stable.  Paper scale: no
# clipping, as the official configs.
smoke_overrides = dict(optim_wrapper=dict(clip_grad=dict(max_norm=35, norm_type=2)))
