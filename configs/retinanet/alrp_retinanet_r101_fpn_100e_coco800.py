# aLRP Loss RetinaNet, ResNet-101 FPN, scale 800: 800x800 SSD-style training, 100 epochs,
# 16 images per batch (4 GPUs x 4), lr 0.004, steps 60/80.
# Feeds: aLRP README "Table of Main Results" (before the mmdet port), row "ResNet-101 / 800"
# (oLRP 64.5, AP 43.6 minival, 44.1 test-dev).
# Source: the AP-Loss-based code that produced that row, kemaloksuz/aLRPLoss
# configs/aLRPLoss800_r101.py at the commit before 5a2c25f (IoU assigner 0.5 / 0.4, 3 ratios
# x 2 scales, as here).  Not the mmdet port's row "aLRP Loss (GIoU+ATSS) ResNet-101 / 800"
# (45.4 minival, 45.9 test-dev), whose configs/alrp_loss/alrp_loss_retinanet_r101_fpn_ATSS_100e_coco800.py
# uses the ATSS assigner (top 9) with 1 ratio x 3 scales.
_base_ = './alrp_retinanet_r50_fpn_100e_coco800.py'
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
