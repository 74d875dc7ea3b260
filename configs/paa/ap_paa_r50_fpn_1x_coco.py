# AP-Loss PAA (no IoU head, PAA's labelling kept).  As the official Bucketed head: binary
# labels, GIoU box loss with score-based weighting and NO task balancing (lambda = 1), and
# the head's delta 0.5 passed to AP Loss (its AP / BAP branch calls
# `self.loss_rank.apply(flat_preds, flat_labels, self.delta)` and the configs set no delta,
# so the head's default 0.5 replaces AP Loss's 1.0; the ATSS head passes 1.0 instead, see
# configs/atss/ap_atss_r50_fpn_1x_coco.py); lr 0.008.
# Feeds: RS paper Table 2 (PAA, "AP Loss"); Bucketed README PAA table, "AP" row (37.3).
# Official: BucketedRankingBasedLosses configs/bucketed_ranking_losses/ap_loss_paa_r50_fpn_1x_coco.py
# (the config its README links; mmdet/models/dense_heads/rank_based_paa_head.py).
_base_ = './rs_paa_r50_fpn_1x_coco.py'
model = dict(bbox_head=dict(loss_rank=dict(_delete_=True, type='APLoss', delta=0.5), task_balance=1.0))
