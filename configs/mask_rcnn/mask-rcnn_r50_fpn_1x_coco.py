# Mask R-CNN, ResNet-50 FPN, 12 epochs, mmdet's recipe (Cross-Entropy and L1 losses, random
# sampling, 16 images per batch: 8 GPUs x 2, lr 0.02, test score threshold 0.05): the baseline.
# Feeds: RS paper Table 4 ("Mask R-CNN"), Table A.19 (Mask R-CNN, standard loss).
# Official: mmdetection configs/mask_rcnn/mask_rcnn_r50_fpn_1x_coco.py (the baseline of the RS
# paper); here mmdet 3.x's own port of it, unchanged but for the evaluator.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['rankrepro.evaluation.metrics'], allow_failed_imports=False)

train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
val_evaluator = dict(type='CocoOLRPMetric', metric=['bbox', 'segm'])
test_evaluator = val_evaluator
