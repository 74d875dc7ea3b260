# RS-R-CNN+: RS-R-CNN (rs_faster-rcnn_r50_fpn_1x_coco.py) with CARAFE upsampling in FPN,
# ResNet-50, 12 epochs, 16 images per batch (4 GPUs x 4), lr 0.012, test score threshold 0.40.
# Feeds: RS paper Table 1 ("RS-R-CNN+"), Table A.20 (RS-Faster R-CNN+ R-50);
# RS README "RS-R-CNN" R-50 with Carafe.
# Official: RankSortLoss configs/ranksort_loss/ranksort_faster_rcnn+_r50_fpn_1x_coco.py.
# As the official config (it changes only the neck), images are padded to multiples of 32,
# not 64 as mmdet's CARAFE baseline (faster-rcnn_r50_fpn-carafe_1x_coco.py).
# Smoke variant only: mmcv has no CPU kernel for CARAFE, so rankrepro.smoke upsamples by
# nearest in FPN_CARAFE (the paper-scale model keeps CARAFE).
_base_ = './rs_faster-rcnn_r50_fpn_1x_coco.py'

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
        upsample_cfg=dict(type='carafe', up_kernel=5, up_group=1, encoder_kernel=3, encoder_dilation=1, compressed_channels=64),
    )
)
