# aLRP Loss RetinaNet, ResNeXt-101 (32x8d) FPN, scale 500: the R-50 scale-500 recipe (512x512
# SSD-style training, 32 images per batch = 4 GPUs x 8, lr 0.008, 100 epochs) with steps at
# epochs 75 and 95.
# Feeds: aLRP README "Table of Main Results", row "ResNext-101-32x8d / 500" (oLRP 64.8,
# AP 42.8 minival, 43.4 test-dev).
# Source: the AP-Loss-based code of that row, kemaloksuz/aLRPLoss configs/aLRPLoss500_x101.py
# at the commit before 5a2c25f (IoU assigner, 3 ratios x 2
# scales, epochs 100, lr_step [75, 95], torchvision's resnext101_32x8d weights).  The
# official mmdet port has only ATSS-assigned X-101-64x4d configs, which no table reports.
# Not matched: the official normalised these torchvision weights with Caffe's BGR means
# (102.98, 115.95, 122.77) and ImageNet stds; here torchvision's own RGB mean/std.
_base_ = './alrp_retinanet_r50_fpn_100e_coco500.py'
model = dict(
    backbone=dict(
        type='ResNeXt',
        depth=101,
        groups=32,
        base_width=8,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnext101_32x8d'),
    )
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=100, by_epoch=True, milestones=[75, 95], gamma=0.1),
]
