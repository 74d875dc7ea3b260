# ATSS with Focal Loss and its centerness head: mmdet's ATSS (lr 0.01), trained unchanged;
# tested as mmdet 2.x's ATSSHead before 2.18 (e.g. 2.8, the RankSortLoss code base): per level the
# 1000 anchors with the highest max(score x centerness), all their classes into NMS, the
# threshold on score x centerness (CandidateSwitchATSSHead, test_candidates='anchors').
# Feeds: RS paper Table 2 (ATSS, "Focal Loss" with aux. head).
_base_ = 'mmdet::atss/atss_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['rankrepro.models', 'rankrepro.evaluation.metrics'], allow_failed_imports=False)
model = dict(bbox_head=dict(type='CandidateSwitchATSSHead', test_candidates='anchors'))
val_evaluator = dict(type='CocoOLRPMetric')
test_evaluator = val_evaluator
