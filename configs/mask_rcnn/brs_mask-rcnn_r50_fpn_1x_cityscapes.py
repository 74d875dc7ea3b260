# BRS-Mask R-CNN on Cityscapes: RS-Mask R-CNN Cityscapes (ResNet-50 FPN from COCO, 12 epochs of
# RepeatDataset x 8, 4 GPUs x 4 assumed, lr 0.012) with Bucketed RS Loss (delta 0.5) in the RPN and
# the box head.
# Feeds: Bucketed README Cityscapes "BRS".
# Official: BucketedRankingBasedLosses configs/bucketed_ranking_losses/bucketed_ranksort_mask_rcnn_r50_fpn_1x_cityscapes.py
# (the same missing base, string rank_loss_type and epoch conflict as the RS config; resolved the same way).
_base_ = './rs_mask-rcnn_r50_fpn_1x_cityscapes.py'

model = dict(
    rpn_head=dict(loss_rank=dict(_delete_=True, type='BucketedRankSortLoss', delta=0.5)),
    roi_head=dict(bbox_head=dict(loss_rank=dict(_delete_=True, type='BucketedRankSortLoss', delta=0.5))),
)
