# Faster R-CNN trained by Focal Loss (fl_faster-rcnn_r50_fpn_giou_rpn-random_rcnn-random_1x_coco.py:
# class-wise sigmoid Focal Loss in RPN and R-CNN, prior 0.01, R-CNN GIoU weight 2, lr 0.01)
# with both samplers removed: RPN on all anchors, R-CNN on all top-1000 proposals plus the
# ground truths (a RandomSampler keeping every RoI, as the RS configs write "no sampler").
# ResNet-50, 12 epochs, 16 images per batch (4 GPUs x 4, assumed).
# Feeds: RS paper Table A.18 (Focal Loss, None / None).
# Official: no config; App. C.5's settings, the samplers replaced as in RankSortLoss
# configs/ranksort_loss/ranksort_faster_rcnn_r50_fpn_1x_coco.py.
_base_ = './fl_faster-rcnn_r50_fpn_giou_rpn-none_rcnn-random_1x_coco.py'

model = dict(
    train_cfg=dict(
        rcnn=dict(sampler=dict(type='RandomSampler', num=1e10, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True))
    )
)
