# YOLACT baseline: mmdet's YOLACT, unchanged (OHEM, size-based mask-loss normalisation,
# semantic segmentation head, lambda_box = 1.5, lambda_mask = 6.125; 550x550, 55 epochs,
# steps at 20/42/49/52, lr 1e-3, 8 images per batch on 1 GPU), with the oLRP evaluator
# for bbox and segm.
# Feeds: RS paper Table 6, first row ("YOLACT [1]" with OHEM, size-based norm. and
# sem. segm. head).  The other YOLACT rows of Table 6 (heuristics removed one at a time):
# yolact_no_{ohem,size_norm,semantic_head,heuristics}_*.
_base_ = 'mmdet::yolact/yolact_r50_1xb8-55e_coco.py'
custom_imports = dict(
    imports=['rankrepro.models', 'rankrepro.evaluation.metrics'],
    allow_failed_imports=False,
)
val_evaluator = dict(type='CocoOLRPMetric', metric=['bbox', 'segm'])
test_evaluator = val_evaluator
# smoke variant (128x128 images): prototype widths follow the 64-channel smoke neck, and the
# anchor strides / centres follow YOLACT's rule (input size / feature-map size) for 128 px
# inputs (feature maps 16, 8, 4, 2, 1) instead of 550 px ones (69, 35, 18, 9, 5).
smoke_overrides = dict(
    model=dict(
        bbox_head=dict(
            anchor_generator=dict(
                strides=[128.0 / x for x in [16, 8, 4, 2, 1]], centers=[(128 * 0.5 / x, 128 * 0.5 / x) for x in [16, 8, 4, 2, 1]]
            )
        ),
        mask_head=dict(proto_channels=(64, 64, 64, None, 64, 32)),
    )
)
