from .co_atss_head import CoATSSHead, RankBasedCoATSSHead
from .co_deformable_detr_head import CoDeformableDETRHead
from .rank_based_atss_head import CandidateSwitchATSSHead, RankBasedATSSHead
from .rank_based_co_detr_head import RankBasedCoDeformableDETRHead
from .rank_based_paa_head import RankBasedPAAHead
from .rank_based_rpn_head import RankBasedRPNHead
from .rank_sort_solov2_head import RankSortSOLOV2Head
from .rank_sort_yolact_head import RankSortYOLACTHead, RankSortYOLACTProtonet
from .ranking_retina_head import RankingRetinaHead
from .yolact_ablation_protonet import YOLACTAblationProtonet

__all__ = [
    "CoATSSHead",
    "CoDeformableDETRHead",
    "RankBasedCoATSSHead",
    "RankBasedCoDeformableDETRHead",
    "CandidateSwitchATSSHead",
    "RankBasedATSSHead",
    "RankBasedPAAHead",
    "RankBasedRPNHead",
    "RankSortSOLOV2Head",
    "RankSortYOLACTHead",
    "RankSortYOLACTProtonet",
    "RankingRetinaHead",
    "YOLACTAblationProtonet",
]
