"""The only two passes of a ranking loss over all M entries, eager or compiled.

Every loss here (RS, BRS, AP, BAP, aLRP) touches all M logits exactly twice:

* forward, :func:`place`: each entry's interval among a sorted table of P-dependent
  breakpoints (a grid lookup, :mod:`~rankrepro.losses.binning`), and per interval the
  number of entries and the sum of their scores (float64).  All entries are placed,
  positives included: the positives' contributions are removed afterwards with P-length
  operations (their intervals are known from the P-length work), so no pass has to mask
  or compact the negatives.  Ignored entries (target < 0) go to an extra last interval.
* backward, :class:`NegativeGradient`: the gradient each entry receives from the identity
  update is, inside an interval, ``slope * s + intercept`` (RS paper Eq. 12 summed over
  the positives; a constant per bucket for the bucketed losses): one gather from two
  P-length tables and one multiply-add, in float64, written in the logits' dtype.

Everything between the two passes is O(P log P).

The compiled path (``torch.compile(dynamic=True)``; on CPU C++ through the host compiler,
on CUDA Triton) fuses each pass into one loop over M.  It is off by default; switch it on
with the environment variable ``RANKREPRO_COMPILE=1`` or :func:`set_compiled`.  Compiling
costs seconds on the first call of each variant; measured on this project's 2-core CPU
machine (torch 2.13, gcc, a shared machine, float32 logits, M = 1e6): the first RS call
in a fresh process 9-10 s with an empty inductor cache (15-20 s when the machine is
loaded) and 3.6-3.9 s with its on-disk cache warm; then about 2 s for the first call
with ignored entries (the forward variant that reads the targets), 0.8 s for BRS / BAP
(their gather pass) and 2.7 s for float64 logits.  Varying M and P do not recompile
(``dynamic=True``, the grid's scalars passed as a tensor; checked with dynamo's counters
in the tests).  Inputs below ``MIN_COMPILED`` entries stay eager.  The counts and sums
are float64, so the compiled and the eager path agree to rounding (the order of the
float64 additions may differ on parallel devices).

Host syncs (``.item()``, ``.tolist()``, data-dependent shapes) of one RS call: the input
checks' one ``.tolist()`` and ``nonzero`` for the positives (:mod:`~rankrepro.losses.scores`),
on every path.  Compiled on the CPU three more: the fixed grid's range (``.tolist()``), its
``unique_consecutive`` and its width (which decides the refinement; one more pair per
refinement) in :class:`~rankrepro.losses.binning.Grid`; compiled off the CPU none more
(``searchsorted`` in the pass, :func:`_grid_lookup`); eager off the CPU two more, the
``bincount`` of the forward pass (see :func:`~rankrepro.losses.binning.histogram`).  RS /
BRS above 4096 positives: one more (the dyadic sorting term's level count); on the CPU
one more (whether any positive target is -0.0, :func:`~rankrepro.losses.scores._positives`).

Precision: counts are float64 (exact below 2**53); score sums are float64 because the
ramp term subtracts two of them (sum of scores minus anchor times count) and float32 would
lose the exactness the oracle tests check (1e-9); the gradient is computed in float64 and
rounded once to the logits' dtype, as the float64 run would give it.  Interval indices are
int64 in eager mode (what ``searchsorted`` returns and ``bincount`` takes, no conversion
pass), int32 in the compiled pass.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from .binning import CELLS_PER_ENTRY, MIN_QUERIES, Grid, compare_dtype, count_at_or_below, count_with_grid, histogram
from .scores import RankingProblem

_ENV = "RANKREPRO_COMPILE"
# Below this many entries the passes stay eager even when compiled is on: the fixed-shape
# grid and the compiled call cost more than they save.
MIN_COMPILED = MIN_QUERIES
_state = {"compiled": os.environ.get(_ENV, "0") not in ("", "0")}
_compiled_fns: dict = {}


def set_compiled(enabled: bool) -> None:
    """Use the ``torch.compile``d passes over M (True) or the eager ones (False, the default
    unless the environment variable ``RANKREPRO_COMPILE=1`` is set)."""
    _state["compiled"] = bool(enabled)


def compiled_enabled() -> bool:
    """Whether the passes over M run compiled (see :func:`set_compiled`)."""
    return _state["compiled"]


# Inductor options per pass.  Every index the passes gather or scatter with is in range by
# construction (cells clamped to [0, G + 1], intervals from the forward pass), so the
# per-element bounds assertions are dropped (measured on 1 CPU thread at M = 1e6: forward
# 7.0 -> 5.6 ms at P = 10, 11.0 -> 9.2 ms at P = 1000).  The backward passes are mostly
# gathers from P-length tables, which the CPU vectorizer emits as scalar loads bounced
# through stack buffers; as plain scalar loops they run 3.0 -> 1.1 ms (``cpp.simdlen`` 1;
# the forward pass is slower that way, 9.3 ms).  The C++ kernels run on one thread
# (``cpp.threads`` 1): with torch's default of all threads the forward pass's histograms are
# built with atomic adds that contend, and on 2 threads RS at M = 1e6 took 30.9 ms (P = 100)
# and 38.1 ms (P = 1000) against 10.1 / 13.8 ms on 1; pinned to one thread, 8.8 / 12.9 ms on
# 2 threads (the rest of the loss still uses them).  ``cpp.*`` options do not apply on CUDA.
_NO_ASSERTS = {"assert_indirect_indexing": False, "cpp.threads": 1}
_SCALAR = {"assert_indirect_indexing": False, "cpp.simdlen": 1, "cpp.threads": 1}


def _compiled(fn):
    if fn not in _compiled_fns:
        forward = (_forward_pass, _forward_pass_all, _searched_pass, _searched_pass_all)
        options = _NO_ASSERTS if fn in forward else _SCALAR
        _compiled_fns[fn] = torch.compile(fn, dynamic=True, options=options)
    return _compiled_fns[fn]


@dataclass
class Placement:
    """Where the M entries lie among a table of n breakpoints.

    ``intervals`` (M,) int64 (int32 from the compiled pass): #{table <= s} for every entry,
    n + 1 for ignored entries;
    ``counts`` / ``sums`` (n + 2,) float64: per interval, the number and the score sum of
    the entries that are neither positive nor ignored (the last interval holds nothing).
    """

    intervals: Tensor
    counts: Tensor
    sums: Optional[Tensor]  # None when not asked for (eager, with_sums=False)


def place(problem: RankingProblem, table: Tensor, pos_intervals: Tensor, with_sums: bool = True) -> Placement:
    """The forward pass over M: place every entry among the sorted float64 ``table``.

    ``pos_intervals`` are the positives' intervals (``#{table <= s_i}``, P-length work):
    their counts and scores are taken out of the histograms afterwards.  ``with_sums``
    False: the eager pass skips the score sums (``sums`` is then None).
    """
    bins = table.numel() + 2
    x = problem.flat
    placed = grid = None
    # The fixed-shape grid only where it stays well below M cells (at P = 20,000 building it
    # costs more than the compiled pass saves).
    max_cells = x.numel() // 2
    compiled = compiled_enabled() and x.numel() >= MIN_COMPILED
    if compiled and not _grid_lookup(x.device):
        if problem.has_ignored:
            placed = _compiled(_searched_pass)(x, problem.flat_targets, table, bins)
        else:
            placed = _compiled(_searched_pass_all)(x, table, bins)
    elif compiled and CELLS_PER_ENTRY * table.numel() <= max_cells:
        grid = Grid.build(table, fixed=True, max_cells=max_cells)  # if it does not fit, the eager pass uses it
        if grid is not None and grid.fits:
            params = torch.tensor([grid.origin, grid.scale, grid.cells + 1.0], dtype=torch.float64, device=x.device)
            packed = grid.packed(compare_dtype(x, table))
            if problem.has_ignored:
                placed = _compiled(_forward_pass)(x, problem.flat_targets, packed, params, bins, grid.packed_tied)
            else:  # the targets need not be read
                placed = _compiled(_forward_pass_all)(x, packed, params, bins, grid.packed_tied)
    if placed is None:
        placed = _forward_pass_eager(x, problem, table, bins, with_sums, grid)
    intervals, counts, sums = placed
    counts.index_add_(0, pos_intervals, torch.full_like(problem.pos_logits, -1.0))
    if sums is not None:
        sums.index_add_(0, pos_intervals, problem.pos_logits, alpha=-1)
    return Placement(intervals, counts, sums)


def _forward_pass_eager(x: Tensor, problem: RankingProblem, table: Tensor, bins: int, with_sums: bool,
                        grid: Optional[Grid] = None):
    x64 = x.to(torch.float64)
    intervals = count_at_or_below(table, x64, grid)
    if problem.has_ignored:
        intervals.masked_fill_(problem.flat_targets < 0, bins - 1)
    counts = histogram(intervals, bins)
    sums = histogram(intervals, bins, x64) if with_sums else None
    return intervals, counts, sums


def _forward_pass(x: Tensor, targets: Tensor, packed: Tensor, params: Tensor, bins: int, tied: bool):
    """The compiled form of the forward pass (fixed shapes; one fused loop over M).  int32
    indices: narrower, and measured faster than int64.  The comparisons with the packed
    grid run in its dtype (float32 for float32 scores: :meth:`Grid.packed`; measured 5.45
    -> 5.0 ms at M = 1e6, P = 100, 8.8 -> 7.8 ms at P = 1000)."""
    intervals = count_with_grid(x, packed, params[0], params[1], params[2], tied)
    intervals = torch.where(targets < 0, bins - 1, intervals)  # ignored: the last interval
    return intervals, *_histograms(x, intervals, bins)


def _forward_pass_all(x: Tensor, packed: Tensor, params: Tensor, bins: int, tied: bool):
    """``_forward_pass`` without ignored entries: the targets are not read (4 bytes less per
    entry; measured 0.25 ms at M = 1e6)."""
    intervals = count_with_grid(x, packed, params[0], params[1], params[2], tied)
    return intervals, *_histograms(x, intervals, bins)


def _grid_lookup(device: torch.device) -> bool:
    """Whether the compiled forward pass locates the scores with the grid (on the CPU,
    where a binary search per score is branchy and slow) or with ``searchsorted``, which
    Triton fuses into the pass as a binary search (other devices: no grid to build, about
    45 small operations and three host syncs fewer per call; not measured on a GPU here)."""
    return device.type == "cpu"


def _searched_pass(x: Tensor, targets: Tensor, table: Tensor, bins: int):
    """The forward pass with ``searchsorted`` (see :func:`_grid_lookup`)."""
    intervals = torch.searchsorted(table, x.to(torch.float64), right=True, out_int32=True)
    intervals = torch.where(targets < 0, bins - 1, intervals)  # ignored: the last interval
    return intervals, *_histograms(x, intervals, bins)


def _searched_pass_all(x: Tensor, table: Tensor, bins: int):
    """``_searched_pass`` without ignored entries (the targets are not read)."""
    intervals = torch.searchsorted(table, x.to(torch.float64), right=True, out_int32=True)
    return intervals, *_histograms(x, intervals, bins)


def _histograms(x: Tensor, intervals: Tensor, bins: int):
    x64 = x.to(torch.float64)
    counts = torch.zeros(bins, dtype=torch.float64, device=x.device).index_add_(0, intervals, torch.ones_like(x64))
    sums = torch.zeros(bins, dtype=torch.float64, device=x.device).index_add_(0, intervals, x64)
    return counts, sums


class NegativeGradient:
    """The identity-update gradient of all M entries from the negatives' side, kept as
    P-length tables until backward: entry n gets ``slope[k_n] * s_n + intercept[k_n]``
    (``slope`` None: ``intercept[k_n]``), with k_n its interval; the tables are zero at the
    last (ignored) interval, and the positives' entries are overwritten by their own
    gradient.  ``nonnegative``: the exact values are >= 0 (sums of H with non-negative
    weights), so a rounding residue below 0 (slope * s + intercept cancel where the ramp
    starts) is set to 0, keeping the sign properties of the identity update exact.
    """

    def __init__(self, problem: RankingProblem, intervals: Tensor, slope: Optional[Tensor], intercept: Tensor,
                 nonnegative: bool = False):
        self.flat = problem.flat
        self.intervals = intervals
        self.slope = slope
        self.intercept = intercept
        self.nonnegative = nonnegative

    def combine(self, terms) -> Tensor:
        """sum_t scale_t * gradient_t over ``terms`` [(float64 0-dim scale, NegativeGradient)]
        that share ``intervals``: one pass over M, in the logits' dtype."""
        if len(terms) == 1 and terms[0][1].nonnegative:
            scale, term = terms[0]
            if term.slope is None:  # constant per interval: clamp the table itself
                return gradient_pass(self.flat, self.intervals, None, term.intercept.clamp_min(0.0) * scale)
            return gradient_pass(self.flat, self.intervals, term.slope, term.intercept, scale)
        slope = intercept = None
        for scale, term in terms:
            if term.slope is not None:
                slope = scale * term.slope if slope is None else slope + scale * term.slope
            intercept = scale * term.intercept if intercept is None else intercept + scale * term.intercept
        return gradient_pass(self.flat, self.intervals, slope, intercept)


def gradient_pass(x: Tensor, intervals: Tensor, slope: Optional[Tensor], intercept: Tensor,
                  scale: Optional[Tensor] = None) -> Tensor:
    """``slope[k] * x + intercept[k]`` (or ``intercept[k]``) in float64, returned in x's dtype.

    With ``scale`` (0-dim float64): ``scale * max(0, slope[k] * x + intercept[k])``.
    """
    if compiled_enabled() and x.numel() >= MIN_COMPILED:
        if slope is None:
            return _compiled(_gather_pass)(x, intervals, intercept)
        if scale is None:
            return _compiled(_gradient_pass)(x, intervals, slope, intercept)
        return _compiled(_scaled_gradient_pass)(x, intervals, slope, intercept, scale)
    if slope is None:
        return _gather_pass(x, intervals, intercept)
    if scale is not None:  # scale the tables (P-length), clamp on the side of scale's sign
        slope, intercept = slope * scale, intercept * scale
    grad = intercept.index_select(0, intervals)
    grad.addcmul_(slope.index_select(0, intervals), x)  # x is promoted to float64 on the fly
    grad = grad.to(x.dtype)  # a rounding residue keeps its sign: clamped after the narrowing
    if scale is not None and grad.device.type == "cpu":
        grad = grad.clamp_min_(0.0) if scale.item() >= 0 else grad.clamp_max_(0.0)
    elif scale is not None:  # bounds as 0-dim tensors: no host sync (10x slower on the CPU)
        nonnegative = scale >= 0
        inf = torch.full((), float("inf"), dtype=scale.dtype, device=scale.device)
        grad = grad.clamp_(torch.where(nonnegative, 0.0, -inf), torch.where(nonnegative, inf, 0.0))
    return grad


def _gradient_pass(x: Tensor, intervals: Tensor, slope: Tensor, intercept: Tensor) -> Tensor:
    grad = slope.index_select(0, intervals) * x.to(torch.float64) + intercept.index_select(0, intervals)
    return grad.to(x.dtype)


def _scaled_gradient_pass(x: Tensor, intervals: Tensor, slope: Tensor, intercept: Tensor, scale: Tensor) -> Tensor:
    grad = slope.index_select(0, intervals) * x.to(torch.float64) + intercept.index_select(0, intervals)
    return (grad.clamp_min(0.0) * scale).to(x.dtype)


def _gather_pass(x: Tensor, intervals: Tensor, intercept: Tensor) -> Tensor:
    return intercept.index_select(0, intervals).to(x.dtype)
