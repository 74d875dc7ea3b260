# RS-Mask R-CNN, ResNet-101 FPN, 36 epochs, multi-scale training (shorter side one of 640, 672,
# ..., 800, longer side at most 1333), 1333x800 at test, 16 images per batch (4 GPUs x 4), lr 0.012.
# Feeds: RS paper Table 8 ("RS-Mask R-CNN", test-dev), Table A.20 (RS-Mask R-CNN R-101, detection and
# segmentation), RS README Mask R-CNN COCO ResNet-101; Bucketed README COCO instance
# segmentation "RS" ResNet-101 (the Bucketed authors' rerun).
# Official: RankSortLoss configs/ranksort_loss/ranksort_mask_rcnn_r101_fpn_mstrain_3x_coco.py.
# (The Bucketed repo's rerun, configs/ranksort_loss/ranksort_loss_mask_rcnn_r101_fpn_mstrain_3x_coco.py,
# also inherits mmdet's RepeatDataset x 3 of the ms-poly 3x base while setting 36 epochs, i.e. 108
# passes; its README lists 36 epochs, as the RS run: this config trains 36, without RepeatDataset.)
_base_ = './rs_mask-rcnn_r50_fpn_1x_coco.py'

model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))

# the official discrete list of scales (mmdet 2.x multiscale_mode='value')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 800), (1333, 768), (1333, 736), (1333, 704), (1333, 672), (1333, 640)],
        keep_ratio=True,
    ),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# 36 epochs: linear warm-up over 500 iterations from 0.001 x lr, steps at 27 and 33
train_cfg = dict(max_epochs=36)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
