# BRS-Cascade R-CNN: RS-Cascade R-CNN (rs_cascade-rcnn_r50_fpn_1x_coco.py) with Bucketed RS
# Loss in RPN and every R-CNN stage, ResNet-50, 12 epochs, 16 images per batch (4 GPUs x 4;
# the Bucketed configs' batch), lr 0.012, test score threshold 0.40, 1000 training proposals.
# Feeds: Bucketed README Cascade R-CNN "BRS".
# Official: BucketedRankingBasedLosses configs/bucketed_ranking_losses/
# bucketed_ranksort_loss_cascade_rcnn_r50_fpn_1x_coco.py (identical to the RS config but for
# rank_loss_type='BucketedRankSort' in the four heads); its runs' logs
# (tools/analysis_tools/logs/bucketed_ranksort_cascase_rcnn_{1,2}.json, 41.0 / 41.1 AP) show
# 4 GPUs x 4 images, 1000 training proposals and score threshold 0.4.
_base_ = './rs_cascade-rcnn_r50_fpn_1x_coco.py'

model = dict(
    rpn_head=dict(loss_rank=dict(_delete_=True, type='BucketedRankSortLoss', delta=0.5)),
    # every stage's head as RS-Cascade R-CNN's, its loss replaced (a list is replaced, not merged)
    roi_head=dict(
        bbox_head=[dict(head, loss_rank=dict(type='BucketedRankSortLoss', delta=0.5)) for head in _base_.model.roi_head.bbox_head]
    ),
)
