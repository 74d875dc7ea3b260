# Faster R-CNN trained by Focal Loss (fl_faster-rcnn_r50_fpn_giou_rpn-random_rcnn-random_1x_coco.py:
# class-wise sigmoid Focal Loss in RPN and R-CNN, prior 0.01, R-CNN GIoU weight 2, lr 0.01)
# with the RPN sampler removed: Focal Loss over all anchors, divided by the positives (mmdet's
# RPNHead without a sampler); mmdet's random R-CNN sampler kept (512 RoIs, 1:3).
# ResNet-50, 12 epochs, 16 images per batch (4 GPUs x 4, assumed).
# Feeds: RS paper Table A.18 (Focal Loss, None / Random).
# Official: no config; App. C.5's settings, the RPN sampler replaced as in RankSortLoss
# configs/ranksort_loss/ranksort_faster_rcnn_r50_fpn_1x_coco.py (PseudoSampler).
_base_ = './fl_faster-rcnn_r50_fpn_giou_rpn-random_rcnn-random_1x_coco.py'

model = dict(train_cfg=dict(rpn=dict(sampler=dict(_delete_=True, type='PseudoSampler'))))
