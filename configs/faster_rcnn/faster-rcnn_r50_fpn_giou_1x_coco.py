# Faster R-CNN (FPN), ResNet-50, 12 epochs, mmdet's GIoU recipe: Cross Entropy (softmax R-CNN
# classifier), GIoU Loss (weight 10) on decoded R-CNN boxes, L1 Loss in RPN, random samplers,
# 16 images per batch (8 GPUs x 2), lr 0.02.
# Feeds: RS paper Table 1 ("GIoU Loss"), Table A.18 (Cross Entropy, RPN Random, R-CNN Random).
# Official: RankSortLoss configs/faster_rcnn/faster_rcnn_r50_fpn_giou_1x_coco.py (mmdet 2.x);
# here mmdet 3.3's faster-rcnn_r50_fpn_giou_1x_coco.py, the same recipe.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_giou_1x_coco.py'
custom_imports = dict(imports=['rankrepro.models', 'rankrepro.evaluation.metrics'], allow_failed_imports=False)

train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
val_evaluator = dict(type='CocoOLRPMetric')
test_evaluator = val_evaluator
