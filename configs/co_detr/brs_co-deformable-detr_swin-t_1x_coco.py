# BRS-DETR (brs_co-deformable-detr_r50_1x_coco.py: the project's reconstruction, no official
# config) with Co-DETR's Swin-T backbone and weight decay 0.05 (co-deformable-detr_swin-t_1x_coco.py).
# Feeds: Bucketed README Co-DETR table, "BRS-DETR" Swin-T (52.3 AP).
_base_ = ['./brs_co-deformable-detr_r50_1x_coco.py', './_base_/swin_backbones.py']

model = dict(backbone={{_base_.swin_t}}, neck=dict(in_channels={{_base_.swin_t_channels}}))
optim_wrapper = dict(optimizer=dict(weight_decay=0.05))
