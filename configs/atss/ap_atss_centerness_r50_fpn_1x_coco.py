# AP-Loss ATSS with ATSS's centerness head kept: the centerness branch is trained by mmdet's
# ATSS centerness loss (BCE, averaged over positives, weight 1) and multiplies the scores
# at test time; everything else as ap_atss_r50_fpn_1x_coco.py.
# Feeds: RS paper Table 2 (ATSS, "AP Loss" with aux. head, 37.2 AP).
# Official: not released (the RS repo's AP-Loss ATSS configs have no centerness).
_base_ = './ap_atss_r50_fpn_1x_coco.py'
model = dict(
    bbox_head=dict(aux_head=True, loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0))
)
