# Co-DETR (co-deformable-detr_r50_1x_coco.py) with a Swin-T backbone (ImageNet-1k, 224 px weights),
# weight decay 0.05, everything else as the ResNet-50 config: 12 epochs, 8 GPUs x 2 images.
# Feeds: Bucketed README Co-DETR table, "Co-DETR" Swin-T (51.7 AP).
# Official: Sense-X/Co-DETR projects/configs/co_deformable_detr/co_deformable_detr_swin_tiny_1x_coco.py.
_base_ = ['./co-deformable-detr_r50_1x_coco.py', './_base_/swin_backbones.py']

model = dict(backbone={{_base_.swin_t}}, neck=dict(in_channels={{_base_.swin_t_channels}}))
optim_wrapper = dict(optimizer=dict(weight_decay=0.05))
