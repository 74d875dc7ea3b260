# BRS-Cascade R-CNN: RS-Cascade R-CNN (rs_cascade-rcnn_r50_fpn_1x_coco.py) with Bucketed RS
# Loss in RPN and every R-CNN stage, ResNet-50, 12 epochs, 16 images per batch (4 GPUs x 4;
# the Bucketed configs' batch), lr 0.012, test score threshold 0.40, 1000 training proposals.
# Feeds: Bucketed README Cascade R-CNN "BRS".
# Official: BucketedRankingBasedLosses configs/bucketed_ranking_losses/
# bucketed_ranksort_loss_cascade_rcnn_r50_fpn_1x_coco.py (identical to the RS config but for
# rank_loss_type='BucketedRankSort' in the four heads); its runs' logs
# (tools/analysis_tools/logs/bucketed_ranksort_cascase_rcnn_{1,2}.json, 41.0 / 41.1 AP) show
# 4 GPUs x 4 images, 1000 training proposals and score threshold 0.4.
_base_ = './rs_cascade-rcnn_r50_fpn_1x_coco.py'

model = dict(
    rpn_head=dict(loss_rank=dict(_delete_=True, type='BucketedRankSortLoss', delta=0.5)),
    roi_head=dict(
        bbox_head=[
            dict(
                type='RankBasedShared2FCBBoxHead',
                in_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=80,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0], target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=True,
                reg_decoded_bbox=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                loss_bbox=dict(type='GIoULoss', reduction='none'),
                loss_rank=dict(type='BucketedRankSortLoss', delta=0.5),
            )
            for _stage in range(3)
        ]
    ),
)
