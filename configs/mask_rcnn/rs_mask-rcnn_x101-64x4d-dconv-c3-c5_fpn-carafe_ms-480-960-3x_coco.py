# RS-Mask R-CNN+, ResNeXt-101-64x4d with DCNv2 in stages 2-4 (c3-c5), Carafe FPN, 36 epochs,
# multi-scale [480, 960], 16 images per batch (4 GPUs x 4, assumed as in the RS paper), lr 0.012.
# Feeds: RS paper Table 3 ("RS-Mask R-CNN+*", box AP on test-dev), Table 8 ("RS-Mask R-CNN+*"),
# RS README Mask R-CNN COCO ResNeXt-101-DCN with Carafe.
# Official: RankSortLoss configs/ranksort_loss/ranksort_mask_rcnn+_x101_dcn_fpn_mstrain_3x_coco.py.
_base_ = './rs_mask-rcnn_r101_fpn-carafe_ms-480-960-3x_coco.py'

model = dict(
    backbone=dict(
        type='ResNeXt',
        depth=101,
        groups=64,
        base_width=4,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        style='pytorch',
        dcn=dict(type='DCNv2', deform_groups=4, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True),
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext101_64x4d'),
    )
)
