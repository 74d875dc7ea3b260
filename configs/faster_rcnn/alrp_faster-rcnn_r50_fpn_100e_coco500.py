# Faster R-CNN trained by aLRP Loss with aLRP Loss's "heavy training" (RS paper App. B.2):
# 512x512 SSD-style augmented training images, 100 epochs, 32 images per batch (4 GPUs x 8),
# lr 0.012 ("as validated in the original paper"), test shorter side 500.  Model and losses as
# alrp_faster-rcnn_r50_fpn_1x_coco.py (self-balancing weight 50, updated every epoch; test
# score threshold 0.05); data and schedule as rs_faster-rcnn_r50_fpn_100e_coco500.py.
# Feeds: RS paper Table A.12 (aLRP Loss, heavy training).
# Official: no config; the RankSortLoss heads' rank_loss_type='aLRP' branch on the RS-R-CNN
# config, trained with aLRP Loss's recipe (configs/retinanet/alrp_retinanet_r50_fpn_100e_coco500.py).
_base_ = './rs_faster-rcnn_r50_fpn_100e_coco500.py'

model = dict(
    rpn_head=dict(loss_rank=dict(_delete_=True, type='aLRPLoss', delta=1.0), sb_initial=50.0),
    roi_head=dict(bbox_head=dict(loss_rank=dict(_delete_=True, type='aLRPLoss', delta=1.0), sb_initial=50.0)),
    test_cfg=dict(rcnn=dict(score_thr=0.05)),
)
custom_hooks = [dict(type='ALRPSelfBalancingHook')]
optim_wrapper = dict(optimizer=dict(lr=0.012))
