# BRS-R-CNN: RS-R-CNN (rs_faster-rcnn_r50_fpn_1x_coco.py) with Bucketed RS Loss in RPN and
# R-CNN, ResNet-50, 12 epochs, 16 images per batch (4 GPUs x 4; the Bucketed configs'
# batch), lr 0.012, no samplers, 1000 training proposals per image, test score threshold 0.40.
# Feeds: Bucketed README Faster R-CNN "BRS" R-50.
# Official: BucketedRankingBasedLosses configs/bucketed_ranking_losses/
# bucketed_ranksort_loss_faster_rcnn_r50_fpn_1x_coco.py (the RS config with
# rank_loss_type='BucketedRankSort' in both heads; it restates rpn_proposal and the test
# rpn settings with the RS config's values).
_base_ = './rs_faster-rcnn_r50_fpn_1x_coco.py'

model = dict(
    rpn_head=dict(loss_rank=dict(_delete_=True, type='BucketedRankSortLoss', delta=0.5)),
    roi_head=dict(bbox_head=dict(loss_rank=dict(_delete_=True, type='BucketedRankSortLoss', delta=0.5))),
)
