# AP-Loss ATSS with ATSS's centerness head kept: the centerness branch is trained by mmdet's
# ATSS centerness loss (BCE, averaged over positives, weight 1); at test time its sigmoid
# multiplies the class scores before the candidate selection, the score threshold and NMS
# (mmdet 2.8's ATSSHead, test_candidates='anchors'); everything else as
# ap_atss_r50_fpn_1x_coco.py (delta 1.0, box loss 2.0 x score-weighted mean GIoU).
# Feeds: RS paper Table 2 (ATSS, "AP Loss" with aux. head, 37.2 AP).
# Official: not released (the RankSortLoss repository has no AP-Loss config; the
# BucketedRankingBasedLosses ATSS head has no centerness branch).
_base_ = './ap_atss_r50_fpn_1x_coco.py'
model = dict(
    bbox_head=dict(aux_head=True, loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0))
)
