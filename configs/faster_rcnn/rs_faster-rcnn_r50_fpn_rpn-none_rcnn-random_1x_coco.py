# RS-R-CNN without RPN sampler (all anchors) and with mmdet's random R-CNN sampler (512 RoIs
# per image, 1:3; the unsampled RoIs are ignored by RS Loss).  Otherwise RS-R-CNN:
# ResNet-50, 12 epochs, 16 images per batch (4 GPUs x 4), lr 0.012.
# Feeds: RS paper Table 10 and Table A.17 (COCO, None / Random), Table A.18 (RS Loss,
# None / Random).
# Official: no config; RS-R-CNN (RankSortLoss configs/ranksort_loss/
# ranksort_faster_rcnn_r50_fpn_1x_coco.py) with the R-CNN sampler of its base
# configs/_base_/models/faster_rcnn_r50_fpn.py, as App. C.5 describes.
_base_ = './rs_faster-rcnn_r50_fpn_1x_coco.py'

model = dict(
    train_cfg=dict(
        rcnn=dict(sampler=dict(_delete_=True, type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True)),
    )
)
