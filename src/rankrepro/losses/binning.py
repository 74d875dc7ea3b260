"""Exact ``searchsorted(table, x, right=True)`` for many x, fast on the CPU and compilable.

Placing M scores among the breakpoints of P positives is the dominant cost of the losses.
PyTorch's CPU ``searchsorted`` runs a branchy binary search per element (about 150 ns
each for a table of 2,000, still 17-20 ns for a table of 20).  Here a uniform grid of
cells over the table's range is laid first: each cell knows how many table entries lie
at or below its lower edge (``base``) and the few *distinct* entries inside it with their
multiplicities.  A score then costs one multiply-floor, a few gathers and comparisons,
whatever the size of the table.  Cell edges are widened by a margin far above float64
rounding, so the result is exact, ties included.

Two forms of the same grid:

* eager (:meth:`Grid.count`): one entry per cell is compared directly; the scores
  falling into the rare cells with two or more distinct entries take ``searchsorted``
  (a data-dependent subset, cheap in eager mode);
* fixed-shape (:meth:`Grid.count_fixed`): up to ``WIDTH`` distinct entries per cell are
  compared, no data-dependent shape, so that ``torch.compile`` fuses the whole lookup
  into the pass over the scores.  The grid is refined until no cell holds more than
  ``WIDTH`` distinct entries (``Grid.fits``).
"""
from __future__ import annotations

import torch
from torch import Tensor

# Below this many queries (or off the CPU) plain searchsorted is as fast in eager mode.
MIN_QUERIES = 1 << 16
CELLS_PER_ENTRY = 16
# The fixed-shape form compares up to WIDTH distinct entries per cell and refines the grid
# (doubling the cells) up to MAX_CELLS_PER_ENTRY to get there.
WIDTH = 3
MAX_CELLS_PER_ENTRY = 32  # each doubling rebuilds the grid: P-length work that grows fast


def count_at_or_below(table: Tensor, x: Tensor, grid: "Grid | None" = None) -> Tensor:
    """``#{table <= x}`` for every x (int64): ``torch.searchsorted(table, x, right=True)``.

    ``table`` is sorted float64; ``x`` float64 and finite; ``grid``: one already built for
    ``table`` (else built here when worth it).
    """
    if x.device.type != "cpu" or x.numel() < MIN_QUERIES:
        return torch.searchsorted(table, x, right=True)
    grid = grid or Grid.build(table)
    if grid is None:
        return torch.searchsorted(table, x, right=True)
    return grid.count(x)


class Grid:
    """Cells 1..G cover [low, high]; cell 0 is everything below, cell G + 1 above.

    Attributes (all over the G + 2 cells): ``base`` (int64) the count at the cell's lower
    edge; ``values`` (WIDTH, G + 2) float64 the distinct table entries inside the cell in
    ascending order, +inf where there are fewer; ``mults`` (WIDTH, G + 2) int64 how often
    each occurs in the table (0 for the padding).  ``single`` / ``mult`` are the eager form:
    the one distinct entry of a cell, NaN where the cell holds two or more (``crowded``).
    """

    def __init__(self, table: Tensor, low: float, high: float, cells_per_entry: int, fixed: bool) -> None:
        device, dtype = table.device, table.dtype
        self.table = table
        distinct, multiplicity = torch.unique_consecutive(table, return_counts=True)
        self.tied = distinct.numel() < table.numel()
        if self.tied:
            below = torch.zeros(distinct.numel() + 1, dtype=torch.long, device=device)
            torch.cumsum(multiplicity, 0, out=below[1:])  # below[j] = #{table < distinct[j]}
        self.cells = cells_per_entry * table.numel()
        self.low = low
        self.scale = self.cells / (high - low)
        # cell = floor((x - origin) * scale) = floor((x - low) * scale + 1), clamped to [0, G + 1]
        self.origin = low - 1.0 / self.scale
        # Far above the rounding of the cell computation and of the edges (relative to the
        # range, and to the magnitude of the scores when it dwarfs the range).
        margin = (high - low) * 1e-9 + (abs(low) + abs(high)) * 1e-13
        edges = low + torch.arange(self.cells + 1, dtype=dtype, device=device) / self.scale
        inf = torch.tensor([float("inf")], dtype=dtype, device=device)
        lower = torch.cat((-inf, edges - margin))  # lower edge of cells 0..G+1
        upper = torch.cat((edges + margin, inf))  # upper edge of cells 0..G+1
        # Every x put into a cell lies within [lower, upper] of that cell, so its count is
        # the count at the lower edge plus the multiplicities of the entries in between
        # that are <= x.
        first = _count_at_or_below_each(distinct, lower)
        inside = _count_at_or_below_each(distinct, upper) - first
        self.base = below[first] if self.tied else first
        if self.tied:  # entries per cell counted with their multiplicity, in the same sync
            entries = below[first + inside] - self.base
            self.width, repeated_width = torch.stack((inside.max(), entries.max())).tolist()
        else:
            self.width = int(inside.max())
        self.crowded = self.width > 1
        padded_distinct = torch.cat((distinct, inf))
        padded_mult = torch.cat((multiplicity, multiplicity.new_zeros(1)))
        rows = []
        for w in range(WIDTH if fixed else 1):  # the eager form needs the first entry only
            at = torch.where(inside > w, first + w, distinct.numel())
            rows.append((padded_distinct.index_select(0, at), padded_mult.index_select(0, at)))
        self.values = torch.stack([v for v, _ in rows])
        self.mults = torch.stack([m for _, m in rows])
        self.single = self.values[0].masked_fill(inside > 1, float("nan")) if self.crowded else self.values[0]
        self.mult = self.mults[0]
        # A tied table whose cells hold at most WIDTH entries even counted with their
        # multiplicity (a few ties): the fixed form lists the entries themselves, repeated,
        # and needs no multiplicities (half the packed table; at M = 1e6, P = 1000 with one
        # tie among 2000 breakpoints the compiled pass measured 7.9 -> 5.6 ms).
        self.repeated = None
        if fixed and self.tied and repeated_width <= WIDTH:
            padded_table = torch.cat((table, inf))
            self.repeated = torch.stack([
                padded_table.index_select(0, torch.where(entries > w, self.base + w, table.numel()))
                for w in range(WIDTH)
            ])

    @classmethod
    def build(cls, table: Tensor, fixed: bool = False, max_cells: int | None = None) -> "Grid | None":
        """The grid of a sorted float64 ``table``; None if it is empty.

        ``fixed``: refine until every cell holds at most ``WIDTH`` distinct entries (for
        :meth:`count_fixed`); if even ``MAX_CELLS_PER_ENTRY`` is not enough, the returned
        grid has ``fits`` False.
        ``max_cells``: no refinement beyond that many cells.
        """
        if table.numel() == 0:
            return None
        low, high = table[[0, -1]].tolist()  # one host sync
        if not high > low:  # a constant table: any range around it will do
            span = max(1.0, abs(low))
            low, high = low - span, high + span
        per_entry = CELLS_PER_ENTRY
        grid = cls(table, low, high, per_entry, fixed)
        limit = float("inf") if max_cells is None else max_cells
        while fixed and grid.width > WIDTH and per_entry < MAX_CELLS_PER_ENTRY and 2 * grid.cells <= limit:
            per_entry *= 2
            grid = cls(table, low, high, per_entry, fixed)
        return grid

    @property
    def packed_tied(self) -> bool:
        """Whether :meth:`packed` lists multiplicities (a tied table with more than WIDTH
        entries in a cell when counted with them)."""
        return self.tied and self.repeated is None

    @property
    def fits(self) -> bool:
        """Whether :meth:`count_fixed` may be used (built with ``fixed`` and no cell holds
        more than ``WIDTH`` distinct entries)."""
        return self.values.shape[0] == WIDTH and self.width <= WIDTH

    def count(self, x: Tensor) -> Tensor:
        """Eager form: one direct comparison per score; crowded cells by searchsorted."""
        cell = _cell_of(x, self.origin, self.scale, self.cells + 1.0)
        # index_select: several times faster than advanced indexing for 1-D gathers on CPU.
        counts = self.base.index_select(0, cell)
        single = self.single.index_select(0, cell)
        hit = single <= x
        if self.tied:
            counts += self.mult.index_select(0, cell) * hit
        else:
            counts += hit
        if self.crowded:  # only there can a cell hold NaN: search those scores exactly
            where = torch.nonzero(torch.isnan(single)).squeeze(1)
            if where.numel():
                counts[where] = self._search(x[where])
        return counts

    def packed(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """The fixed-shape form's table, one row per cell (flattened): ``base, v_0 .. v_{W-1}``
        (the cell's entries, repeated entries listed as often as they occur) or, where
        ``packed_tied``, ``base, v_0, m_0, .., v_{W-1}, m_{W-1}`` (distinct entries and their
        multiplicities).  One row is one or two
        cache lines: the lookups of a score hit the same lines (measured 20 % faster than
        separate tables at P = 1000).

        ``dtype`` float32 (see :func:`compare_dtype`): half the size, for scores that are
        float32 values (float32, float16, bfloat16): the entries are rounded *up* to float32,
        which keeps every comparison exact: for such x, ``v <= x`` iff ``up(v) <= x``, the
        smallest float32 >= v being <= x exactly when v is.  Counts and multiplicities stay
        exact (below 2**24: checked by ``compare_dtype``)."""
        values = self.values if self.repeated is None else self.repeated
        if dtype != values.dtype:  # rounded up (the counts are exact)
            narrow = values.to(dtype)
            values = torch.where(narrow.to(values.dtype) < values, torch.nextafter(narrow, narrow.new_tensor(float("inf"))), narrow)
        columns = [self.base.to(dtype)]
        for w in range(WIDTH):
            columns.append(values[w])
            if self.packed_tied:
                columns.append(self.mults[w].to(dtype))
        return torch.stack(columns, dim=1).reshape(-1)

    def count_fixed(self, x: Tensor) -> Tensor:
        """Fixed-shape form (requires ``fits``): the same counts without data-dependent shapes."""
        return count_with_grid(x, self.packed(), self.origin, self.scale, self.cells + 1.0, self.packed_tied).long()

    def _search(self, x: Tensor) -> Tensor:
        # The scores of crowded cells: the fixed-shape comparison is exact when the grid
        # fits, otherwise compare against the cell's whole range.
        if self.fits:
            return self.count_fixed(x)
        return torch.searchsorted(self.table, x, right=True)


def _count_at_or_below_each(table: Tensor, edges: Tensor) -> Tensor:
    """``searchsorted(table, edges, right=True)`` for sorted ``edges`` much longer than the
    sorted ``table``: each table entry is placed among the edges instead (O(n log G), not
    O(G log n)), and a cumulative count gives every edge its count.  Entry t counts for
    every edge >= t, i.e. from position ``searchsorted(edges, t)`` (left) on."""
    start = torch.searchsorted(edges, table)
    return histogram(start, edges.numel() + 1, dtype=torch.int64)[: edges.numel()].cumsum(0)


def histogram(index: Tensor, size: int, weights: Tensor | None = None, dtype=torch.float64) -> Tensor:
    """``bincount(index, weights, minlength=size)`` for ``index`` known to lie in [0, size),
    in ``dtype``: as ``index_add_`` into zeros, whose size is known without reading the
    indices (``bincount`` takes their maximum first: a host sync on CUDA).  Long inputs
    (M-length, at least ``MIN_QUERIES``) keep ``bincount`` where it is faster or may be:
    on the CPU unweighted (twice as fast as adding ones; weighted, ``index_add_`` is as
    fast), on other devices always (CUDA's bincount builds the histogram in shared memory;
    ``index_add_`` makes one global atomic add per entry into a few hot bins: not measured
    here, so the sync stays)."""
    if index.numel() >= MIN_QUERIES and (weights is None or index.device.type != "cpu"):
        return torch.bincount(index, weights=weights, minlength=size).to(dtype)
    out = torch.zeros(size, dtype=dtype, device=index.device)
    if weights is None:
        return out.index_add_(0, index, torch.ones((), dtype=dtype, device=index.device).expand(index.numel()))
    return out.index_add_(0, index, weights.to(dtype))


def _cell_of(x: Tensor, origin, scale, last, dtype=torch.int64) -> Tensor:
    """The cell of every finite x: floor((x - origin) * scale) clamped to [0, last = G + 1]
    (``origin``, ``scale``, ``last``: numbers or 0-dim tensors).  The difference first: its
    rounding and that of ``origin`` are within the grid's margin (relative 1e-13 of the
    table's magnitude), unlike x * scale for scores far from 0."""
    cell = (x - origin).mul_(scale)
    # clamped before the cast: everything is >= 0, so truncation is the floor.
    cell = cell.clamp_(0.0, last) if not isinstance(last, Tensor) else cell.clamp_min_(0.0).clamp_max_(last)
    return cell.to(dtype)


def compare_dtype(scores: Tensor, table: Tensor) -> torch.dtype:
    """The dtype of :meth:`Grid.packed` for these scores: float32 when every score is a
    float32 value (float32, float16, bfloat16 scores) and the counts are exact in float32,
    else float64."""
    if scores.dtype in (torch.float32, torch.float16, torch.bfloat16) and table.numel() < 2**24:
        return torch.float32
    return torch.float64


def count_with_grid(x: Tensor, packed: Tensor, origin, scale, last, tied: bool) -> Tensor:
    """``#{table <= x}`` (int32) from a grid's packed table (:meth:`Grid.packed`, of
    ``compare_dtype(x, table)``, or float64; ``last`` = G + 1; ``tied``: the grid's
    ``packed_tied``), with fixed shapes only: the
    form that ``torch.compile`` fuses into one loop over x.  ``x`` in its own dtype: the
    cell is computed in float64, the comparisons in the wider of x's and the table's dtype.
    Untied tables need no multiplicities (every one is 1; the padding is +inf, never <= x)."""
    stride = 1 + WIDTH * (2 if tied else 1)
    row = _cell_of(x.to(torch.float64), origin, scale, last, torch.int32) * stride
    counts = packed.index_select(0, row)
    for w in range(WIDTH):
        at = row + (1 + 2 * w if tied else 1 + w)
        hit = packed.index_select(0, at) <= x
        counts = counts + (packed.index_select(0, at + 1) * hit if tied else hit)
    return counts.to(torch.int32)
