# Faster R-CNN trained by aLRP Loss in RPN and R-CNN ("standard training"), ResNet-50,
# 12 epochs, 16 images per batch (4 GPUs x 4), lr 0.009 (RS paper App. B.2: tuned for aLRP
# Loss), no samplers as RS-R-CNN.  aLRP's localisation component is weighted by the
# self-balancing weight (initially 50, updated every epoch: ALRPSelfBalancingHook); the
# GIoU Losses of the positives enter aLRP's classification error.
# Feeds: RS paper Table 1 ("aLRP Loss"), Table A.12 (aLRP Loss, standard training).
# Official: no config; the RankSortLoss heads' rank_loss_type='aLRP' branch
# (mmdet/models/dense_heads/rank_based_rpn_head.py, roi_heads/bbox_heads/convfc_bbox_head.py),
# on the RS-R-CNN config (configs/ranksort_loss/ranksort_faster_rcnn_r50_fpn_1x_coco.py).
# Not matched: the official code hard-codes the self-balancing period (7330 iterations =
# one COCO epoch at 16 images); here it is one epoch of the actual run.  Test score
# threshold 0.05, mmdet's default (the RS paper tunes 0.40 only for its RS models).
_base_ = './rs_faster-rcnn_r50_fpn_1x_coco.py'

model = dict(
    rpn_head=dict(loss_rank=dict(_delete_=True, type='aLRPLoss', delta=1.0), sb_initial=50.0),
    roi_head=dict(bbox_head=dict(loss_rank=dict(_delete_=True, type='aLRPLoss', delta=1.0), sb_initial=50.0)),
    test_cfg=dict(rcnn=dict(score_thr=0.05)),
)
custom_hooks = [dict(type='ALRPSelfBalancingHook')]
optim_wrapper = dict(optimizer=dict(lr=0.009))
