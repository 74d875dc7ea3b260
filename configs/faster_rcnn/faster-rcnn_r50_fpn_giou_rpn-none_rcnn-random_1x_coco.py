# Faster R-CNN with GIoU Loss (faster-rcnn_r50_fpn_giou_1x_coco.py: Cross Entropy, softmax
# R-CNN classifier, GIoU weight 10) with the RPN sampler removed (Cross Entropy over all
# anchors, averaged over the positives as mmdet does without a sampler), mmdet's random
# R-CNN sampler kept; ResNet-50, 12 epochs, lr 0.02 as the baseline (no tuning: the point
# of App. C.5), 16 images per batch (4 GPUs x 4, assumed: the RS paper's batch).
# Feeds: RS paper Table A.18 (Cross Entropy, None / Random).
# Official: no config; mmdet's faster_rcnn_r50_fpn_giou_1x_coco.py with the RPN sampler
# replaced as in RankSortLoss configs/ranksort_loss/ranksort_faster_rcnn_r50_fpn_1x_coco.py.
_base_ = './faster-rcnn_r50_fpn_giou_1x_coco.py'

model = dict(train_cfg=dict(rpn=dict(sampler=dict(_delete_=True, type='PseudoSampler'))))
train_dataloader = dict(batch_size=4)
auto_scale_lr = dict(enable=False, base_batch_size=16)

# Smoke variant only (ResNet-18 from scratch, 4 images, lr 0.02 meant for 16 images on an
# ImageNet-initialised backbone): gradients clipped at norm 35, as the smoke RS-R-CNN.
# Unclipped, the smoke none / none variant diverged to NaN after ~9 iterations.  Paper scale:
# no clipping, as mmdet's baseline.
smoke_overrides = dict(optim_wrapper=dict(clip_grad=dict(max_norm=35, norm_type=2)))
