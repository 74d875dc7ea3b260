# The YOLACT baseline with none of the three: no OHEM, no size-based normalisation, no semantic
# segmentation head;
# everything else as yolact_r50_1xb8-55e_coco.py (mmdet's YOLACT).
# Feeds: RS paper Table 6, YOLACT row with all three off (13.6 mask AP).
# Official: not released as configs (the RS repo's YOLACT protonet has the size
# normalisation commented out).
_base_ = './yolact_r50_1xb8-55e_coco.py'
model = dict(
    bbox_head=dict(use_ohem=False),
    mask_head=dict(type='YOLACTAblationProtonet', size_normalisation=False, with_seg_branch=False),
)
