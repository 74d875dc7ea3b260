# ATSS with Focal Loss, centerness head removed, no score weighting, lambda_box = 2.
# Feeds: RS paper Table 9 (first row, 38.7 AP) and Table 2 (ATSS, "Focal Loss" w/o aux. head).
_base_ = './rs_atss_r50_fpn_1x_coco.py'
model = dict(
    bbox_head=dict(
        # mmdet's ATSS anchors (one 8x-stride square anchor per location), not the aLRP anchors
        # of the ranking-loss configs: the official baseline (RankSortLoss configs/gfl/fl_r50_fpn_1x_coco.py)
        anchor_generator=dict(octave_base_scale=8, scales_per_octave=1),
        loss_rank=None,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        box_weighting='none',
        task_balance=2.0,
    )
)
optim_wrapper = dict(optimizer=dict(lr=0.01))
