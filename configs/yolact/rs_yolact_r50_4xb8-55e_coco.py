# RS-YOLACT, ResNet-50 FPN, 550x550 train/test, 55 epochs, cosine annealing from lr 0.006
# (linear warm-up 500 iterations from 0.1x), SGD momentum 0.9, weight decay 5e-4,
# 8 images per GPU (samples_per_gpu=8 in the official config; the authors trained on
# 4 GPUs, i.e. 32 images per batch, recorded in auto_scale_lr).
# RS Loss on all anchors (no OHEM), IoU labels, score-weighted GIoU and Dice Loss,
# value-based task balancing; no semantic segmentation head, no size-based normalisation,
# no lambda_box = 1.5 / lambda_mask = 6.125.
# Feeds: RS paper Table 6, last row ("RS-YOLACT"), Table A.16 ("IoU" row), RS README
# model zoo "RS-YOLACT".  Table A.16's other rows: rs_yolact_{binary,dice,iou_dice}_labels_*.
# Official: RankSortLoss configs/ranksort_loss/ranksort_yolact_r50_55e_coco.py.
# The project's YOLACT baseline (mmdet's YOLACT with the oLRP evaluator and the smoke settings
# of YOLACT at 128 px); the heads, schedule and batch below replace its own.
_base_ = './yolact_r50_1xb8-55e_coco.py'
input_size = 550
max_epochs = 55
model = dict(
    type='RankSortYOLACT',  # mmdet's YOLACT, plus the mask-quality labels of Table A.16
    bbox_head=dict(
        _delete_=True,
        type='RankSortYOLACTHead',
        num_classes=80,
        in_channels=256,
        feat_channels=256,
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=3,
            scales_per_octave=1,
            base_sizes=[8, 16, 32, 64, 128],
            ratios=[0.5, 1.0, 2.0],
            strides=[550.0 / x for x in [69, 35, 18, 9, 5]],
            centers=[(550 * 0.5 / x, 550 * 0.5 / x) for x in [69, 35, 18, 9, 5]],
        ),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0], target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),  # not computed: sigmoid outputs
        loss_bbox=dict(type='GIoULoss', reduction='none'),
        loss_rank=dict(type='RankSortLoss', delta=0.5),
        box_weighting='score',
        task_balance='value',
        label='iou',
        num_head_convs=1,
        num_protos=32,
        use_ohem=False,
    ),
    mask_head=dict(
        _delete_=True,
        type='RankSortYOLACTProtonet',
        in_channels=256,
        num_protos=32,
        num_classes=80,
        max_masks_to_train=None,  # the official RS mask loss takes every positive
        mask_weighting='score',
        task_balance='value',
        with_seg_branch=False,
    ),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0.0, by_epoch=True, begin=0, end=max_epochs),
]
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.006, momentum=0.9, weight_decay=5e-4))
train_dataloader = dict(batch_size=8)
train_cfg = dict(max_epochs=max_epochs, val_interval=5)  # the official evaluates every 5 epochs
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5))
auto_scale_lr = dict(enable=False, base_batch_size=32)
