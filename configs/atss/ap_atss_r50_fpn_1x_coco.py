# AP-Loss ATSS (centerness-free head, binary labels): AP Loss with delta 1.0 on the classifier;
# box loss = 2.0 x the score-weighted mean GIoU Loss, a fixed weight (no value-based task
# balancing); lr 0.008, 16 images.
# Feeds: RS paper Table 2 (ATSS, "AP Loss"); Bucketed README ATSS table, "AP" row (38.3).
# Official: BucketedRankingBasedLosses configs/bucketed_ranking_losses/ap_loss_atss_r50_fpn_1x_coco.py
# with mmdet/models/dense_heads/rank_based_atss_head.py, whose AP / BAP branch calls
# `self.loss_rank.apply(flat_preds, flat_labels, 1.0)` (delta 1.0, not the head's delta
# 0.5, which only its RS / BRS branch uses) and multiplies the score weights by
# `self.loc_weight = 2.0` after their sum is taken: loss_bbox = 2 sum_i s_i GIoU_i / sum_i s_i.
_base_ = './rs_atss_r50_fpn_1x_coco.py'
model = dict(bbox_head=dict(loss_rank=dict(_delete_=True, type='APLoss', delta=1.0), task_balance=2.0))
