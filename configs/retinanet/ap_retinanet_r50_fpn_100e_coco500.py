# AP Loss RetinaNet, ResNet-50 FPN, scale 500 (the aLRP paper's AP Loss baseline): AP Loss
# (delta 1) on the classifier, Smooth L1 (beta 1.0, weight 1.0) on the deltas of the
# positives (mean over their 4 coordinates), lr 0.002; otherwise the aLRP R-50 recipe
# (anchors, assigner, SSD-style augmentation, 100 epochs, steps 60/80, 32 images).
# Feeds: aLRP README "Results of the Base Models (with Scale 500)", row "AP Loss /
# ResNet-50" (oLRP 71.0, AP 35.5 minival).
# Source: the AP-Loss-based code of that row, kemaloksuz/aLRPLoss configs/APLoss500_r50.py at
# the commit before 5a2c25f; the mmdet port's configs/alrp_loss/ap_loss_retinanet_r50_fpn_100e_coco500.py
# has the same recipe (its README: 35.4 minival).
_base_ = './alrp_retinanet_r50_fpn_100e_coco500.py'
model = dict(
    bbox_head=dict(
        loss_rank=dict(_delete_=True, type='APLoss', delta=1.0),
        loss_bbox=dict(_delete_=True, type='SmoothL1Loss', beta=1.0, loss_weight=1.0),
    )
)
custom_hooks = []
optim_wrapper = dict(optimizer=dict(lr=0.002))
