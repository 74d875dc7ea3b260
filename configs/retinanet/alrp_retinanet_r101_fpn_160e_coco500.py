# aLRP Loss RetinaNet, ResNet-101 FPN, scale 500: as the R-50 recipe but 160 epochs with
# steps at epochs 90, 110 and 140 (32 images per batch, lr 0.008).
# Feeds: aLRP README "Table of Main Results", row "ResNet-101 / 500" (oLRP 66.1, AP 41.2
# minival, 41.7 test-dev).
# Source: the AP-Loss-based code of that row, kemaloksuz/aLRPLoss configs/aLRPLoss500_r101.py
# at the commit before 5a2c25f (IoU assigner, 3 ratios x 2
# scales, epochs 160, lr_step [90, 110, 140]).  The official mmdet port has only an
# ATSS-assigned R-101 config (alrp_loss_retinanet_r101_fpn_ATSS_100e_coco500.py: 100
# epochs, steps 75/95, ratio 1 only), not this one.
_base_ = './alrp_retinanet_r50_fpn_100e_coco500.py'
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
train_cfg = dict(max_epochs=160)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=160, by_epoch=True, milestones=[90, 110, 140], gamma=0.1),
]
