# PAA trained with Quality Focal Loss (IoU of the detached predicted box as the positive's
# label), no IoU head; PAA's candidates are still scored with Focal Loss + 2 GIoU
# (``loss_assign``); everything else as fl_paa_no_iou_head_r50_fpn_1x_coco.py.
# Feeds: RS paper Table 2 (PAA, "QFL", 40.2 AP).
# Official: RankSortLoss configs/gfl/qfl_paa_r50_fpn_1x_coco_flassign.py (unreleased head).
_base_ = './fl_paa_no_iou_head_r50_fpn_1x_coco.py'
model = dict(
    bbox_head=dict(
        loss_cls=dict(_delete_=True, type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_assign=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
    )
)
