# Cascade R-CNN (FPN), ResNet-50, 12 epochs, mmdet's recipe: 3 R-CNN stages (IoU 0.5 / 0.6
# / 0.7, stage loss weights 1 / 0.5 / 0.25), Cross Entropy + Smooth L1, random samplers,
# 2000 proposals per image in training, 16 images per batch (8 GPUs x 2), lr 0.02.
# Feeds: RS paper Table A.15 ("Cascade R-CNN"), Table A.19 (Cascade R-CNN, standard loss:
# training time per iteration).
# Official: RankSortLoss configs/cascade_rcnn/cascade_rcnn_r50_fpn_1x_coco.py (mmdet 2.x);
# here mmdet 3.3's cascade-rcnn_r50_fpn_1x_coco.py, the same recipe.
_base_ = 'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['rankrepro.models', 'rankrepro.evaluation.metrics'], allow_failed_imports=False)

train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
val_evaluator = dict(type='CocoOLRPMetric')
test_evaluator = val_evaluator
