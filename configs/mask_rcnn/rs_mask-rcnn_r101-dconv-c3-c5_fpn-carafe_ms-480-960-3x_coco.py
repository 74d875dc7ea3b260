# RS-Mask R-CNN+, ResNet-101 with DCNv2 in stages 2-4 (c3-c5), Carafe FPN, 36 epochs, multi-scale
# [480, 960], 16 images per batch (4 GPUs x 4), lr 0.012.
# Feeds: RS paper Table 3 ("RS-Mask R-CNN+", box AP on test-dev), Table 8 ("RS-Mask R-CNN+" with
# DCN), Table A.20 (RS-Mask R-CNN+ R-101-DCN, detection), RS README Mask R-CNN COCO ResNet-101-DCN
# with Carafe.
# Official: RankSortLoss configs/ranksort_loss/ranksort_mask_rcnn+_r101_dcn_fpn_mstrain_3x_coco.py.
_base_ = './rs_mask-rcnn_r101_fpn-carafe_ms-480-960-3x_coco.py'

model = dict(
    backbone=dict(
        # modulated deformable convolution, 4 offset groups, as the official config
        dcn=dict(type='DCNv2', deform_groups=4, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True),
    )
)
