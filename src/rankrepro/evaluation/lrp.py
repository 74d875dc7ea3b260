"""Optimal LRP (oLRP) and its components from matched detections.

LRP (Oksuz et al., ECCV 2018; "One Metric to Measure them All", TPAMI 2021), with the
TP validation threshold tau (0.5), over a set of kept detections:

    LRP = (sum_TP (1 - IoU) / (1 - tau) + N_FP + N_FN) / (N_TP + N_FP + N_FN)

with N_TP + N_FN = #GT (non-ignored).  Every TP contributes at most 1 (IoU >= tau), so
LRP <= 1.  oLRP is its minimum over the ways of keeping "the detections above a
confidence", per class; its components at the optimum are oLRP_Loc = mean (1 - IoU) over
the TPs (not divided by 1 - tau), oLRP_FP = N_FP / (N_TP + N_FP), oLRP_FN = N_FN / #GT.

Two modes say what "the detections above a confidence" are:

``official`` (the default): the rule of the authors' LRP-Error evaluator
    (github.com/kemaloksuz/LRP-Error, ``pycocotools/pycocotools/cocoeval.py``,
    ``COCOeval.accumulate`` and ``lvis-api/lvis/eval.py``, ``LVISEval.accumulate``): all
    detections of the class, pooled over images, are sorted by score with a stable sort
    (``np.argsort(-scores, kind='mergesort')``), LRP is evaluated after every *rank* of
    that list, and the *first* minimum (``np.argmin``) is taken.  Tied detections are thus
    split in list order: image order (the evaluator's sorted image ids), then, within an
    image, the order in which pycocotools / lvis list them (their stable per-image sort
    by score keeps the result file's order).  A TP ranked before an FP of equal score is
    counted alone.  Ignored detections (on crowd / ignored ground truth, or LVIS's
    not-exhaustive rule) hold ranks but count as neither TP nor FP.  A class without
    any TP has oLRP 1, oLRP_FN 1 and undefined Loc / FP (the evaluator's NaN); when no rank
    gets below 1 although there are TPs (every TP at IoU exactly tau) the evaluator still
    reports the components at the first rank, and so does this module.

``threshold``: the exact minimum over score *thresholds*: the detections scoring >= s,
    for every distinct score s (ties enter together), or keeping none (LRP 1; then the
    components are those of keeping none: FN 1, Loc / FP undefined).  Among equal minima
    the highest threshold wins.  ``score_grid=STEP`` restricts s to 0, STEP, ..., 1, the
    grid of the 2018 LRP toolkit (github.com/cancam/LRP,
    ``cocoLRPapi-master/PythonAPI/pycocotools/cocoevalLRP.py``: ``confScores`` = 0, 0.01,
    ..., 1), which can only give a value >= the exact one.

Without ties the two modes give the same oLRP.  moLRP and the mean components average over
the classes with (non-ignored) ground truth (the evaluator skips the others), each
component over the classes where it is defined (Loc and FP are undefined for a class
without a TP), as the evaluator's ``summarize`` drops NaN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TAU = 0.5
OLRP_MODES = ("official", "threshold")
# The finest --score-grid: 1 / 1e-4 = 10,001 thresholds per class.  Finer grids add no
# fidelity to a toolkit whose grid is 0.01 (use mode 'threshold' without a grid for the
# exact minimum) and, at 1e-9 and below, need gigabytes per class.
MIN_SCORE_GRID = 1e-4


@dataclass(frozen=True)
class ClassLRP:
    """oLRP of one class at its LRP-optimal score threshold."""

    num_gt: int
    olrp: float  # nan when the class has no ground truth
    loc: float  # nan without TPs at the optimum
    fp: float  # nan without detections at the optimum
    fn: float
    threshold: float  # score of the last detection kept at the optimum; nan when none is kept
    num_tp: int
    num_fp: int


def check_olrp_options(mode: str = "official", score_grid: float | None = None) -> None:
    """ValueError unless ``mode`` is one of :data:`OLRP_MODES` and ``score_grid`` is None or,
    with mode 'threshold', a step in [MIN_SCORE_GRID, 1]."""
    if mode not in OLRP_MODES:
        raise ValueError(f"unknown oLRP mode {mode!r}; choose from {OLRP_MODES}")
    if score_grid is None:
        return
    if mode != "threshold":
        raise ValueError("a score grid applies to the oLRP mode 'threshold' only")
    if isinstance(score_grid, bool) or not isinstance(score_grid, (int, float)) or not MIN_SCORE_GRID <= score_grid <= 1:
        raise ValueError(f"the score grid step must be a number in [{MIN_SCORE_GRID:g}, 1], got {score_grid!r}")


def class_olrp(
    scores: np.ndarray,
    is_tp: np.ndarray,
    ious: np.ndarray,
    num_gt: int,
    tau: float = TAU,
    score_grid: float | None = None,
    mode: str = "official",
    top_ignored_score: float | None = None,
) -> ClassLRP:
    """oLRP of one class.

    Args:
        scores: scores of the class's non-ignored detections, in the evaluator's order
            (images in order, each image's detections as pycocotools / lvis list them):
            the order breaks ties in mode 'official'.
        is_tp: whether each detection is a TP at IoU threshold ``tau``.
        ious: IoU of each TP with its ground truth (ignored for FPs).
        num_gt: number of non-ignored ground-truth objects of the class.
        score_grid: mode 'threshold' only: None for the exact minimum, else a grid step.
        mode: 'official' (minimum over ranks, first minimum) or 'threshold'.
        top_ignored_score: mode 'official': the score of the class's top-ranked detection
            when that one is ignored (neither TP nor FP), else None.  Ignored detections
            hold ranks in the evaluator's list, but only this one can be its optimum: an
            ignored rank repeats the LRP of the rank before it, and the ones before any
            TP or FP have LRP 1, the optimum only when no rank gets below 1.
    """
    check_olrp_options(mode, score_grid)
    nan = math.nan
    if num_gt == 0:
        return ClassLRP(0, nan, nan, nan, nan, nan, 0, 0)
    scores = np.asarray(scores, dtype=np.float64)
    is_tp = np.asarray(is_tp, dtype=bool)
    ious = np.asarray(ious, dtype=np.float64)
    if mode == "official":
        return _official(scores, is_tp, ious, num_gt, tau, top_ignored_score)
    return _threshold(scores, is_tp, ious, num_gt, tau, score_grid)


def _no_tp(num_gt: int) -> ClassLRP:
    return ClassLRP(num_gt, 1.0, math.nan, math.nan, 1.0, math.nan, 0, 0)


def _official(scores, is_tp, ious, num_gt, tau, top_ignored_score) -> ClassLRP:
    """Minimum over the ranks of the stably sorted list, the first one."""
    if not is_tp.any():
        return _no_tp(num_gt)
    order = np.argsort(-scores, kind="mergesort")
    tp = is_tp[order]
    fp = ~tp
    tp_num = np.cumsum(tp)
    fp_num = np.cumsum(fp)
    fn_num = num_gt - tp_num
    # Summed as N_TP - sum(IoU), the evaluator's way, so that equal LRP values at different
    # ranks stay bit-for-bit equal and the first minimum is the evaluator's.
    total_loc = tp_num - np.cumsum(np.where(tp, ious[order], 0.0))
    lrps = (total_loc / (1 - tau) + fp_num + fn_num) / (tp_num + fp_num + fn_num)
    best = int(np.argmin(lrps))
    if top_ignored_score is not None and lrps[best] == 1.0:
        # every rank at LRP 1 (each TP at IoU exactly tau): the evaluator's first minimum is
        # its rank 1, the ignored detection, with no TP and no FP (Loc and FP 0/0)
        return ClassLRP(num_gt, 1.0, math.nan, math.nan, 1.0, float(top_ignored_score), 0, 0)
    n_tp, n_fp = int(tp_num[best]), int(fp_num[best])
    return ClassLRP(
        num_gt=num_gt,
        olrp=float(lrps[best]),
        # 0/0 (rank 1 an FP, every rank at LRP 1) is NaN in the evaluator too.
        loc=float(total_loc[best]) / n_tp if n_tp else math.nan,
        fp=n_fp / (n_tp + n_fp) if n_tp + n_fp else math.nan,
        fn=(num_gt - n_tp) / num_gt,
        threshold=float(scores[order][best]),
        num_tp=n_tp,
        num_fp=n_fp,
    )


def _score_grid(step: float) -> np.ndarray:
    """0, step, ..., 1 (like the 2018 toolkit's ``np.linspace(0, 1, 101)`` for 0.01)."""
    n = round(1 / step)
    if abs(n * step - 1) < 1e-9:
        return np.linspace(0.0, 1.0, n + 1)
    return step * np.arange(int(math.floor(1 / step + 1e-9)) + 1)


def _threshold(scores, is_tp, ious, num_gt, tau, score_grid) -> ClassLRP:
    """Minimum over score thresholds (ties enter together), or keeping none."""
    if len(scores) == 0:
        return _no_tp(num_gt)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    tp = is_tp[order]
    loc = np.where(tp, 1.0 - ious[order], 0.0)
    cum_tp = np.cumsum(tp)
    cum_fp = np.cumsum(~tp)
    cum_loc = np.cumsum(loc)
    if score_grid is None:
        # after the last detection of each group of equal scores
        cut = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    else:
        grid = _score_grid(score_grid)
        kept = np.searchsorted(-sorted_scores, -grid, side="right")  # detections with score >= s
        cut = np.unique(kept[kept > 0]) - 1
    lrp = (cum_loc[cut] / (1 - tau) + cum_fp[cut] + (num_gt - cum_tp[cut])) / (num_gt + cum_fp[cut])
    if lrp.size == 0 or lrp.min() >= 1.0:
        return _no_tp(num_gt)
    best = cut[int(np.argmin(lrp))]  # first minimum: the highest threshold among equals
    n_tp, n_fp = int(cum_tp[best]), int(cum_fp[best])
    return ClassLRP(
        num_gt=num_gt,
        olrp=float(lrp.min()),
        loc=float(cum_loc[best] / n_tp) if n_tp else math.nan,
        fp=n_fp / (n_tp + n_fp),
        fn=(num_gt - n_tp) / num_gt,
        threshold=float(sorted_scores[best]),
        num_tp=n_tp,
        num_fp=n_fp,
    )


def mean_components(per_class: list[ClassLRP]) -> dict[str, float]:
    """moLRP and the mean components over classes with ground truth (NaN-free means)."""
    with_gt = [c for c in per_class if c.num_gt > 0]

    def mean(values):
        values = [v for v in values if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan

    return {
        "oLRP": mean(c.olrp for c in with_gt),
        "oLRP_Loc": mean(c.loc for c in with_gt),
        "oLRP_FP": mean(c.fp for c in with_gt),
        "oLRP_FN": mean(c.fn for c in with_gt),
    }
