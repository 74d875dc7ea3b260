# RS-R-CNN, ResNet-101 with DCNv2 in stages c3-c5 (modulated deformable convolutions,
# 4 deformable groups), 36 epochs (lr x0.1 at epochs 27 and 33), multi-scale training: the
# shorter side drawn from the discrete list 480, 560, ..., 960 (longer side <= 1333), test
# at 1333x800; 16 images per batch (4 GPUs x 4), lr 0.012, no samplers, test score
# threshold 0.40.
# Feeds: RS paper Table 3 ("RS-R-CNN"), Table A.20 (RS-Faster R-CNN R-101-DCN); RS README
# "RS-R-CNN" R-101-DCN [480, 960]; Bucketed README Faster R-CNN "RS" R-101 (the Bucketed
# authors' rerun).
# Official: RankSortLoss configs/ranksort_loss/ranksort_faster_rcnn_r101_fpn_mstrain_dcn_3x_coco.py
# (on ranksort_faster_rcnn_r101_fpn_1x_coco.py: torchvision ResNet-101).
# Not matched: none on purpose; mmdet 3.3's RandomChoiceResize is mmdet 2.x's Resize with
# multiscale_mode='value'.
_base_ = './rs_faster-rcnn_r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101'),
        dcn=dict(type='DCNv2', deform_groups=4, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True),
    )
)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=[(1333, 480), (1333, 560), (1333, 640), (1333, 720), (1333, 800), (1333, 880), (1333, 960)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
train_cfg = dict(max_epochs=36)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
