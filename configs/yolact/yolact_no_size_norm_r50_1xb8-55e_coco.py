# The YOLACT baseline with a mask loss without size-based normalisation (each positive's mean
# BCE, not divided by its gt box area);
# everything else as yolact_r50_1xb8-55e_coco.py (mmdet's YOLACT).
# Feeds: RS paper Table 6, YOLACT row with size-based norm. off (21.7 mask AP).
# Official: not released as configs (the RS repo's YOLACT protonet has the size
# normalisation commented out).
_base_ = './yolact_r50_1xb8-55e_coco.py'
model = dict(mask_head=dict(type='YOLACTAblationProtonet', size_normalisation=False))
