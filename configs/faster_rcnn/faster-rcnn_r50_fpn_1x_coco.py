# Faster R-CNN (FPN), ResNet-50, 12 epochs, mmdet's recipe: Cross Entropy (softmax R-CNN
# classifier) + L1 Loss, random samplers (RPN 256 anchors, 1:1; R-CNN 512 RoIs, 1:3),
# 16 images per batch (8 GPUs x 2), lr 0.02.
# Feeds: RS paper Table 1 ("FPN", the default-loss baseline), Table A.19 (Faster R-CNN,
# standard loss: training time per iteration).
# Official: RankSortLoss configs/faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py (mmdet 2.x);
# here mmdet 3.3's own faster-rcnn_r50_fpn_1x_coco.py, the same recipe (mmdet 2.8's
# rpn_proposal nms_pre 2000 / max_num 1000 is mmdet 3.3's nms_pre 2000 / max_per_img 1000).
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['rankrepro.models', 'rankrepro.evaluation.metrics'], allow_failed_imports=False)

train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
val_evaluator = dict(type='CocoOLRPMetric')
test_evaluator = val_evaluator
