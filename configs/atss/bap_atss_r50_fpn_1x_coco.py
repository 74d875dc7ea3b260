# BAP-ATSS: AP-Loss ATSS with Bucketed AP Loss (delta 1.0, box loss 2.0 x the
# score-weighted mean GIoU Loss, no value-based balancing: the recipe of ap_atss_r50_fpn_1x_coco.py).
# Feeds: Bucketed README ATSS table, "BAP" row (38.5).
# Official: BucketedRankingBasedLosses configs/bucketed_ranking_losses/bucketed_ap_loss_atss_r50_fpn_1x_coco.py
# (same head and branch as the AP config, with rank_loss_type='BucketedAPLoss').
_base_ = './ap_atss_r50_fpn_1x_coco.py'
model = dict(bbox_head=dict(loss_rank=dict(_delete_=True, type='BucketedAPLoss', delta=1.0)))
