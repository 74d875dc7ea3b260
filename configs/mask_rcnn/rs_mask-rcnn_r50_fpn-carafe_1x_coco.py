# RS-Mask R-CNN+, ResNet-50, Carafe FPN, 12 epochs, 16 images per batch (4 GPUs x 4), lr 0.012.
# "+": the upsampling of FPN is Carafe (RS paper Sec. 6.2.3, Table 8 caption); the mask head keeps
# its deconvolution (the official config changes only the neck, unlike mmdet's Carafe Mask R-CNN).
# Feeds: RS paper Table A.20 (RS-Mask R-CNN+ R-50, detection and segmentation), RS README Mask
# R-CNN COCO ResNet-50 with Carafe.
# Official: RankSortLoss configs/ranksort_loss/ranksort_mask_rcnn+_r50_fpn_1x_coco.py.
_base_ = './rs_mask-rcnn_r50_fpn_1x_coco.py'

model = dict(
    neck=dict(
        _delete_=True,
        type='FPN_CARAFE',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=5,
        start_level=0,
        end_level=-1,
        norm_cfg=None,
        act_cfg=None,
        order=('conv', 'norm', 'act'),
        upsample_cfg=dict(
            type='carafe', up_kernel=5, up_group=1, encoder_kernel=3, encoder_dilation=1, compressed_channels=64
        ),
    )
)
