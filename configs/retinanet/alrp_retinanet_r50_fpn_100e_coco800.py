# aLRP Loss RetinaNet, ResNet-50 FPN, scale 800: the official 800-scale recipe (800x800
# training images, SSD-style augmentation, 100 epochs, 16 images per batch = 4 GPUs x 4,
# lr 0.004, steps 60/80; test shorter side 800, longer <= 1333).
# Feeds: no published row (the README has scale 800 only for ); the base of
# alrp_retinanet_r101_fpn_100e_coco800.py.
# Official: the AP-Loss-based code's kemaloksuz/aLRPLoss configs/aLRPLoss800_r101.py (at the
# commit before 5a2c25f) with depth 50; the pipeline as the mmdet port's
# configs/_base_/datasets/coco800_detection_augm.py.  Self-balancing period: one epoch of
# this run, as the AP-Loss-based code, which updates the weight at the end of every epoch
# (train.py); the mmdet port's aLRPLossRetinaHead hard-codes 3665 iterations (one COCO
# epoch at 32 images) in all its configs, i.e. half an epoch at this batch size.
_base_ = './alrp_retinanet_r50_fpn_100e_coco500.py'

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PhotoMetricDistortion', brightness_delta=32, contrast_range=(0.5, 1.5), saturation_range=(0.5, 1.5), hue_delta=18),
    dict(type='Expand', mean={{_base_.model.data_preprocessor.mean}}, to_rgb=True, ratio_range=(1, 4)),
    dict(type='MinIoURandomCrop', min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3),
    dict(type='Resize', scale=(800, 800), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.004))
# 4 GPUs x 4 images; lr 0.004 is for 16 images.
auto_scale_lr = dict(enable=False, base_batch_size=16)
