# AP-Loss PAA with PAA's IoU-prediction head kept: the IoU branch is trained as in mmdet's
# PAA (BCE to the IoU of the predicted box, averaged by the IoU sum, weight 0.5) and the
# test score is sqrt(class probability x predicted IoU); everything else as
# ap_paa_r50_fpn_1x_coco.py.
# Feeds: RS paper Table 2 (PAA, "AP Loss" with aux. head, 37.3 AP).
# Official: not released.
_base_ = './ap_paa_r50_fpn_1x_coco.py'
model = dict(
    bbox_head=dict(aux_head=True, loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=0.5))
)
