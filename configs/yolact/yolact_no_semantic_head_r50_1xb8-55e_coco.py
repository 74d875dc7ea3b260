# The YOLACT baseline with no semantic segmentation head;
# everything else as yolact_r50_1xb8-55e_coco.py (mmdet's YOLACT).
# Feeds: RS paper Table 6, YOLACT row with sem. segm. head off (28.1 mask AP).
# Official: not released as configs (the RS repo's YOLACT protonet has the size
# normalisation commented out).
_base_ = './yolact_r50_1xb8-55e_coco.py'
model = dict(mask_head=dict(type='YOLACTAblationProtonet', with_seg_branch=False))
