# BRS-Mask R-CNN: RS-Mask R-CNN (ResNet-50 FPN, 12 epochs, 4 GPUs x 4 assumed, lr 0.012) whose RPN
# and box head are trained by Bucketed RS Loss (delta 0.5); the mask head as RS-Mask R-CNN.
# Feeds: Bucketed README COCO instance segmentation "BRS" ResNet-50.
# Official: BucketedRankingBasedLosses configs/bucketed_ranking_losses/bucketed_ranksort_loss_mask_rcnn_r50_fpn_1x_coco.py
# (its heads get rank_loss_type=dict(type='BucketedRankSort', loss_weight=1.0), the Bucketed loss
# with its default delta 0.5; everything else as the RS config it copies, which this one inherits).
_base_ = './rs_mask-rcnn_r50_fpn_1x_coco.py'

model = dict(
    rpn_head=dict(loss_rank=dict(_delete_=True, type='BucketedRankSortLoss', delta=0.5)),
    roi_head=dict(bbox_head=dict(loss_rank=dict(_delete_=True, type='BucketedRankSortLoss', delta=0.5))),
)
