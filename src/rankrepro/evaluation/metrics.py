"""mmengine metrics for configs: mmdet's COCO / LVIS metrics with oLRP and its components.

Load with ``custom_imports = dict(imports=['rankrepro.evaluation.metrics'])`` and use::

    val_evaluator = dict(type='CocoOLRPMetric', ann_file=..., metric=['bbox', 'segm'])
    val_evaluator = dict(type='LVISOLRPMetric', ann_file=..., metric='bbox')

They keep mmdet's result conversion (``results2json``) and key names
(``coco/bbox_mAP``, ``coco/bbox_mAP_50``, ...; LVIS adds ``lvis/bbox_APr`` ...) and add
``<prefix>/<metric>_oLRP``, ``_oLRP_Loc``, ``_oLRP_FP`` and ``_oLRP_FN``, all from a single
pycocotools / lvis evaluation per metric (see :func:`rankrepro.evaluation.evaluate_coco`).
With ``classwise=True`` every class adds ``<metric>_<class>_AP`` and ``_oLRP``.
``olrp_mode`` ('official', the default, or 'threshold') and ``score_grid`` (with
'threshold') are those of :func:`rankrepro.evaluation.evaluate_coco`.
``outfile_prefix`` also gets ``<prefix>.<metric>.metrics.json`` in the format of
``rankrepro evaluate``.
"""
from __future__ import annotations

import os.path as osp
import tempfile
from collections import OrderedDict

from mmengine.fileio import load
from mmengine.logging import MMLogger
from mmdet.evaluation.metrics import CocoMetric, LVISMetric
from mmdet.registry import METRICS

from .coco import evaluate_coco
from .lrp import check_olrp_options
from .lvis import evaluate_lvis
from .report import SCHEMA_VERSION, write_json_atomic

MMDET_AP_NAMES = {"AP": "mAP", "AP50": "mAP_50", "AP75": "mAP_75", "APs": "mAP_s", "APm": "mAP_m", "APl": "mAP_l"}
LRP_NAMES = ("oLRP", "oLRP_Loc", "oLRP_FP", "oLRP_FN")


class _OLRPMixin:
    """The shared ``compute_metrics``: convert, evaluate once per metric, name the keys."""

    dataset_name = "coco"
    ap_names = MMDET_AP_NAMES

    # Subclasses provide ``_ensure_gt_api(gts, outfile_prefix)`` (lazy ground-truth index)
    # and ``_evaluate(predictions, iou_type)`` (the rankrepro evaluation function).

    def _init_olrp(self, olrp_mode: str, score_grid: float | None) -> None:
        unsupported = [m for m in self.metrics if m not in ("bbox", "segm")]
        if unsupported:
            raise ValueError(f"{type(self).__name__} evaluates 'bbox' and 'segm', not {unsupported}")
        check_olrp_options(olrp_mode, score_grid)
        self.olrp_mode = olrp_mode
        self.score_grid = score_grid

    def compute_metrics(self, results: list) -> dict:
        logger = MMLogger.get_current_instance()
        gts, preds = zip(*results)
        tmp_dir = None
        if self.outfile_prefix is None:
            tmp_dir = tempfile.TemporaryDirectory()
            outfile_prefix = osp.join(tmp_dir.name, "results")
        else:
            outfile_prefix = self.outfile_prefix
        self._ensure_gt_api(gts, outfile_prefix)
        result_files = self.results2json(preds, outfile_prefix)
        eval_results = OrderedDict()
        for metric in self.metrics:
            predictions = load(result_files[metric])
            if metric == "segm":
                for pred in predictions:  # as mmdet: let the mask give the area, not the box
                    pred.pop("bbox", None)
            metrics = self._evaluate(predictions, metric)
            for key, name in self.ap_names.items():
                eval_results[f"{metric}_{name}"] = metrics[key]
            for key in LRP_NAMES:
                eval_results[f"{metric}_{key}"] = metrics[key]
            if self.classwise:
                for name, row in metrics["per_class"].items():
                    eval_results[f"{metric}_{name}_AP"] = row["AP"]
                    eval_results[f"{metric}_{name}_oLRP"] = row["oLRP"]
            summary = " ".join(f"{k} {metrics[k]:.4f}" for k in (*self.ap_names, *LRP_NAMES))
            logger.info(f"{metric}: {summary}")
            if self.outfile_prefix is not None:
                header = {
                    "schema_version": SCHEMA_VERSION,
                    "dataset": self.dataset_name,
                    "iou_type": metric,
                    "olrp_mode": self.olrp_mode,
                    "olrp_score_grid": self.score_grid,
                }
                write_json_atomic({**header, **metrics}, f"{self.outfile_prefix}.{metric}.metrics.json")
        if tmp_dir is not None:
            tmp_dir.cleanup()
        return eval_results


@METRICS.register_module()
class CocoOLRPMetric(_OLRPMixin, CocoMetric):
    """mmdet's ``CocoMetric`` (bbox / segm) plus oLRP (tau = 0.5) and its components.

    Args: those of ``CocoMetric``, plus ``olrp_mode`` ('official': the LRP-Error
    evaluator's oLRP; 'threshold': the minimum over score thresholds) and ``score_grid``
    (with 'threshold': None for every score, 0.01 for the 2018 LRP toolkit's grid).
    ``proposal`` metrics are not supported.
    """

    def __init__(self, *args, olrp_mode: str = "official", score_grid: float | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_olrp(olrp_mode, score_grid)

    def _ensure_gt_api(self, gts, outfile_prefix):
        if self._coco_api is None:
            from mmdet.datasets.api_wrappers import COCO

            self._coco_api = COCO(self.gt_to_coco_json(gt_dicts=gts, outfile_prefix=outfile_prefix))
        if self.cat_ids is None:
            self.cat_ids = self._coco_api.get_cat_ids(cat_names=self.dataset_meta["classes"])
        if self.img_ids is None:
            self.img_ids = self._coco_api.get_img_ids()

    def _evaluate(self, predictions, iou_type):
        return evaluate_coco(self._coco_api, predictions, iou_type, self.score_grid, self.img_ids, self.cat_ids, self.olrp_mode)


@METRICS.register_module()
class LVISOLRPMetric(_OLRPMixin, LVISMetric):
    """mmdet's ``LVISMetric`` (bbox / segm: AP, APr, APc, APf, ...) plus oLRP and components."""

    default_prefix = "lvis"
    dataset_name = "lvis"
    ap_names = {**MMDET_AP_NAMES, "APr": "APr", "APc": "APc", "APf": "APf"}

    def __init__(self, *args, olrp_mode: str = "official", score_grid: float | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_olrp(olrp_mode, score_grid)

    def _ensure_gt_api(self, gts, outfile_prefix):
        if self._lvis_api is None:
            from lvis import LVIS

            self._lvis_api = LVIS(self.gt_to_coco_json(gt_dicts=gts, outfile_prefix=outfile_prefix))
        if self.cat_ids is None:
            self.cat_ids = self._lvis_api.get_cat_ids()
        if self.img_ids is None:
            self.img_ids = self._lvis_api.get_img_ids()

    def _evaluate(self, predictions, iou_type):
        return evaluate_lvis(self._lvis_api, predictions, iou_type, self.score_grid, self.img_ids, self.olrp_mode)
