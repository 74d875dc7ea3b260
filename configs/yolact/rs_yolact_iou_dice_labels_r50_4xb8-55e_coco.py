# RS-YOLACT whose RS Loss labels each positive with the mean of the box IoU and the mask Dice coefficient,
# instead of the IoU of its predicted box; everything else as RS-YOLACT.
# Feeds: RS paper Table A.16, row "(IoU+Dice)/2" (segmentation and detection AP, AP50, AP75).
# Official: not released (the paper's appendix C.4 describes the experiment).
_base_ = './rs_yolact_r50_4xb8-55e_coco.py'
model = dict(bbox_head=dict(label='iou_dice'))
