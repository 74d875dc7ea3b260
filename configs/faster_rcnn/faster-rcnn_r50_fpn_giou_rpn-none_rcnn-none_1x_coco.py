# Faster R-CNN with GIoU Loss (Cross Entropy, softmax R-CNN classifier, GIoU weight 10)
# with both samplers removed: RPN on all anchors, R-CNN on all top-1000 proposals plus the
# ground truths (a RandomSampler keeping every RoI, as the RS configs write "no sampler");
# ResNet-50, 12 epochs, lr 0.02 as the baseline (no tuning), 16 images per batch
# (4 GPUs x 4, assumed: the RS paper's batch).
# Feeds: RS paper Table A.18 (Cross Entropy, None / None).
# Official: no config; mmdet's faster_rcnn_r50_fpn_giou_1x_coco.py with the samplers
# replaced as in RankSortLoss configs/ranksort_loss/ranksort_faster_rcnn_r50_fpn_1x_coco.py.
_base_ = './faster-rcnn_r50_fpn_giou_rpn-none_rcnn-random_1x_coco.py'

model = dict(
    train_cfg=dict(
        rcnn=dict(sampler=dict(type='RandomSampler', num=1e10, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True))
    )
)
