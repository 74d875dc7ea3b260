# aLRP Loss RetinaNet, ResNeXt-101 (32x8d) FPN, scale 800: 800x800 SSD-style training,
# 100 epochs, 16 images per batch (4 GPUs x 4), lr 0.004, steps 60/80.
# Feeds: aLRP README "Table of Main Results", row "ResNext-101-32x8d / 800" (oLRP 62.7,
# AP 45.4 minival, 45.9 test-dev).
# Source: the AP-Loss-based code of that row, kemaloksuz/aLRPLoss configs/aLRPLoss800_x101.py
# at the commit before 5a2c25f (torchvision's resnext101_32x8d
# weights; normalisation as noted in alrp_retinanet_x101-32x8d_fpn_100e_coco500.py).
_base_ = './alrp_retinanet_r50_fpn_100e_coco800.py'
model = dict(
    backbone=dict(
        type='ResNeXt',
        depth=101,
        groups=32,
        base_width=8,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnext101_32x8d'),
    )
)
