# PAA with Focal Loss and without its IoU head: mmdet's PAA (anchors 8 x 1 scale, MaxIoU
# candidates > 0.1, GMM split, score voting, NMS 0.6, lr 0.01 at 16 images) with the IoU
# branch removed; the score is the class probability; GIoU Loss of weight 2 averaged over
# positives (no score weighting), also in PAA's scoring function (FL + 2 GIoU).
# Feeds: RS paper Table 2 (PAA, "Focal Loss" without aux. head, 39.9 AP).
# Official: RankSortLoss configs/gfl/fl_paa_r50_fpn_1x_coco.py (its QFLPAAHead is not in
# the released code; this head keeps PAA's assignment, as the paper says).
_base_ = 'mmdet::paa/paa_r50_fpn_1x_coco.py'
custom_imports = dict(
    imports=['rankrepro.models', 'rankrepro.evaluation.metrics'],
    allow_failed_imports=False,
)
model = dict(
    bbox_head=dict(
        type='RankBasedPAAHead',
        loss_rank=None,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', reduction='none', loss_weight=2.0),
        box_weighting='none',
        task_balance=1.0,
        gmm_reg_covar=1e-5,
    )
)
auto_scale_lr = dict(enable=False, base_batch_size=16)
val_evaluator = dict(type='CocoOLRPMetric')
test_evaluator = val_evaluator
