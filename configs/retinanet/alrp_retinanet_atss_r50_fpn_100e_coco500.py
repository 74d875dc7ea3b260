# aLRP Loss RetinaNet with the ATSS assigner (top-9 per level), one anchor ratio (1.0) x 2
# scales; otherwise the R-50 scale-500 recipe (100 epochs, steps 60/80, 32 images, lr 0.008).
# This is RetinaNet (its head and anchors), not the ATSS detector of configs/atss/.
# Feeds: aLRP README "Results of the Base Models (with Scale 500)", row "aLRP Loss + ATSS /
# ResNet-50" (oLRP 67.3, AP 40.2 minival).
# Source: the AP-Loss-based code of that row, kemaloksuz/aLRPLoss configs/aLRPLoss500_r50_ATSS.py
# at the commit before 5a2c25f (steps 60/80, as here);
# the mmdet port's alrp_loss_retinanet_r50_fpn_ATSS_100e_coco500.py uses steps 75/95.
_base_ = './alrp_retinanet_r50_fpn_100e_coco500.py'
model = dict(
    bbox_head=dict(
        anchor_generator=dict(
            type='AnchorGenerator', octave_base_scale=4, scales_per_octave=2, ratios=[1.0], strides=[8, 16, 32, 64, 128]
        )
    ),
    train_cfg=dict(assigner=dict(_delete_=True, type='ATSSAssigner', topk=9)),
)
