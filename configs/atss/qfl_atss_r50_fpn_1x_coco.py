# ATSS with Quality Focal Loss (IoU labels), centerness removed, score-based box weighting,
# lambda_box = 2 (the QFL defaults used in the RS paper, Sec. 5.2).
# Feeds: RS paper Table 2 (ATSS, "QFL").
_base_ = './rs_atss_r50_fpn_1x_coco.py'
model = dict(
    bbox_head=dict(
        # mmdet's ATSS anchors (one 8x-stride square anchor per location), not the aLRP anchors
        # of the ranking-loss configs: the official baseline (RankSortLoss configs/gfl/qfl_r50_fpn_1x_coco.py)
        anchor_generator=dict(octave_base_scale=8, scales_per_octave=1),
        loss_rank=None,
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        box_weighting='score',
        task_balance=2.0,
    )
)
optim_wrapper = dict(optimizer=dict(lr=0.01))
