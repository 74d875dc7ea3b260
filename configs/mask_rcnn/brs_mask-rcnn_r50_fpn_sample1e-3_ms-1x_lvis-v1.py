# BRS-Mask R-CNN on LVIS v1 with repeat factor sampling: RS-Mask R-CNN LVIS (ResNet-50 FPN,
# 12 epochs, 4 GPUs x 4 assumed, lr 0.012, score threshold 0.60, 300 detections) with Bucketed RS
# Loss (delta 0.5) in the RPN and the box head.
# Feeds: Bucketed README LVIS "BRS".
# Official: BucketedRankingBasedLosses configs/bucketed_ranking_losses/bucketed_ranksort_mask_rcnn_r50_fpn_1x_lvis_v1.py
# (as published its heads receive rank_loss_type='BucketedRankSort', a string where the heads
# index a dict, rank_loss_type['type']; the intended Bucketed RS Loss is used here).
_base_ = './rs_mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'

model = dict(
    rpn_head=dict(loss_rank=dict(_delete_=True, type='BucketedRankSortLoss', delta=0.5)),
    roi_head=dict(bbox_head=dict(loss_rank=dict(_delete_=True, type='BucketedRankSortLoss', delta=0.5))),
)
