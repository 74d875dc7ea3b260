# Faster R-CNN with CARAFE upsampling in FPN (FPN_CARAFE), ResNet-50, 12 epochs, mmdet's
# recipe (Cross Entropy + L1 Loss, random samplers, images padded to multiples of 64),
# 16 images per batch (8 GPUs x 2), lr 0.02.
# Feeds: RS paper Table 1 ("Carafe FPN", the baseline of RS-R-CNN+).
# Official: RankSortLoss configs/carafe/faster_rcnn_r50_fpn_carafe_1x_coco.py (mmdet 2.x);
# here mmdet 3.3's carafe/faster-rcnn_r50_fpn-carafe_1x_coco.py, the same recipe.
# Smoke variant only: mmcv has no CPU kernel for CARAFE, so rankrepro.smoke upsamples by
# nearest in FPN_CARAFE (the paper-scale model keeps CARAFE).
_base_ = 'mmdet::carafe/faster-rcnn_r50_fpn-carafe_1x_coco.py'
custom_imports = dict(imports=['rankrepro.models', 'rankrepro.evaluation.metrics'], allow_failed_imports=False)

train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
val_evaluator = dict(type='CocoOLRPMetric')
test_evaluator = val_evaluator
