# RS-ATSS, ResNet-50 FPN, 12 epochs, 16 images per batch (4 GPUs x 4), lr 0.008.
# Feeds: RS paper Table 2 (ATSS, "RS Loss"), Table 9 (last row: score-based weighting +
# value-based task balancing), RS README model zoo "RS-ATSS"; Bucketed README ATSS "RS".
# Official: RankSortLoss configs/ranksort_loss/ranksort_atss_r50_fpn_1x_coco.py.
_base_ = 'mmdet::atss/atss_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['rankrepro.models', 'rankrepro.evaluation.metrics'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        _delete_=True,
        type='RankBasedATSSHead',
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        # the anchor configuration of aLRP Loss, used for all ranking-based losses
        anchor_generator=dict(
            type='AnchorGenerator', ratios=[1.0], octave_base_scale=4, scales_per_octave=3, strides=[8, 16, 32, 64, 128]
        ),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0], target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_bbox=dict(type='GIoULoss', reduction='none'),
        loss_rank=dict(type='RankSortLoss', delta=0.5),
        box_weighting='score',
        task_balance='value',
        # test: the official head's (mmdet 2.x) candidates, the 1000 best anchors per level by
        # max class score with all their classes, not mmdet 3.x's 1000 best (anchor, class) pairs
        test_candidates='anchors',
    ),
    test_cfg=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.6), max_per_img=100),
)
train_dataloader = dict(batch_size=4)
optim_wrapper = dict(optimizer=dict(lr=0.008))
auto_scale_lr = dict(enable=False, base_batch_size=16)
val_evaluator = dict(type='CocoOLRPMetric')
test_evaluator = val_evaluator
