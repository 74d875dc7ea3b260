# Dynamic R-CNN (dynamic IoU threshold and Smooth L1 beta): mmdet's config, trained unchanged
# (8 GPUs x 2 images, lr 0.02, 12 epochs), with the oLRP evaluator.
# Feeds: RS paper Table 1 ("Dynamic R-CNN"). Its 38.9 AP is mmdetection's model-zoo number for
# this config (metafile dynamic-rcnn_r50_fpn_1x_coco: box AP 38.9): the RS authors evaluated that
# checkpoint for the oLRP columns, so training this config is what reproduces the row.
_base_ = 'mmdet::dynamic_rcnn/dynamic-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['rankrepro.models', 'rankrepro.evaluation.metrics'], allow_failed_imports=False)
val_evaluator = dict(type='CocoOLRPMetric')
test_evaluator = val_evaluator
