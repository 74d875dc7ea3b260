# Mask R-CNN with repeat factor sampling (RFS, oversample threshold 1e-3), ResNet-50 FPN, LVIS v1,
# 12 epochs, multi-scale [640, 800], mmdet's recipe (8 GPUs x 2, lr 0.02, at most 300 detections
# per image, score threshold 1e-4): the RFS baseline.
# Feeds: RS paper Table 5 ("RFS").
# Official: mmdetection configs/lvis/mask_rcnn_r50_fpn_sample1e-3_mstrain_1x_lvis_v1.py; here
# mmdet 3.x's own port of it, unchanged but for the evaluator (LVIS AP with oLRP).
_base_ = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
custom_imports = dict(imports=['rankrepro.evaluation.metrics'], allow_failed_imports=False)

train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
val_evaluator = dict(type='LVISOLRPMetric', metric=['bbox', 'segm'])
test_evaluator = val_evaluator
