# RS-Mask R-CNN, ResNet-50 FPN, 12 epochs, 16 images per batch (4 GPUs x 4), lr 0.012.
# Feeds: RS paper Table 4 ("RS-Mask R-CNN"), Table A.19 (Mask R-CNN, RS Loss), Table A.20
# (RS-Mask R-CNN R-50, detection and segmentation), RS README Mask R-CNN COCO ResNet-50;
# Bucketed README COCO instance segmentation "RS" ResNet-50 (the Bucketed authors' rerun).
# Official: RankSortLoss configs/ranksort_loss/ranksort_mask_rcnn_r50_fpn_1x_coco.py.
_base_ = [
    './_base_/rs-mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['rankrepro.models', 'rankrepro.evaluation.metrics'], allow_failed_imports=False)

train_dataloader = dict(batch_size=4)
optim_wrapper = dict(optimizer=dict(lr=0.012))
auto_scale_lr = dict(enable=False, base_batch_size=16)
val_evaluator = dict(type='CocoOLRPMetric', metric=['bbox', 'segm'])
test_evaluator = val_evaluator
