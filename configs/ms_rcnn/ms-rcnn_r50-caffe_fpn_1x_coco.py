# Mask Scoring R-CNN (Mask R-CNN with a mask IoU head), ResNet-50 caffe style: mmdet's config,
# trained unchanged (8 GPUs x 2 images, lr 0.02, 12 epochs), with the oLRP evaluator for bbox
# and segm.
# Feeds: RS paper Table 4 ("Mask-sc. R-CNN"). Its 38.2 box / 36.0 mask AP are mmdetection's
# model-zoo numbers for this config (metafile ms-rcnn_r50-caffe_fpn_1x_coco: box AP 38.2, mask
# AP 36.0; the pytorch-style R-50 config has no model-zoo entry): the RS authors evaluated that
# checkpoint for the oLRP columns, so training this config is what reproduces the row.
_base_ = 'mmdet::ms_rcnn/ms-rcnn_r50-caffe_fpn_1x_coco.py'
custom_imports = dict(imports=['rankrepro.models', 'rankrepro.evaluation.metrics'], allow_failed_imports=False)
val_evaluator = dict(type='CocoOLRPMetric', metric=['bbox', 'segm'])
test_evaluator = val_evaluator
