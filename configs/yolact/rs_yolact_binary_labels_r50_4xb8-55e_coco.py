# RS-YOLACT whose RS Loss labels each positive with 1 for every positive (only ranking: RS Loss' sorting term is then 0),
# instead of the IoU of its predicted box; everything else as RS-YOLACT.
# Feeds: RS paper Table A.16, row "Binary" (segmentation and detection AP, AP50, AP75).
# Official: not released (the paper's appendix C.4 describes the experiment).
_base_ = './rs_yolact_r50_4xb8-55e_coco.py'
model = dict(bbox_head=dict(label='binary'))
