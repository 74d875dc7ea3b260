# The YOLACT baseline with the box head without OHEM: mmdet's anchor loss (softmax cross-entropy)
# over all anchors;
# everything else as yolact_r50_1xb8-55e_coco.py (mmdet's YOLACT).
# Feeds: RS paper Table 6, YOLACT row with OHEM off (15.1 mask AP).
# Official: not released as configs (the RS repo's YOLACT protonet has the size
# normalisation commented out).
_base_ = './yolact_r50_1xb8-55e_coco.py'
model = dict(bbox_head=dict(use_ohem=False))
