"""The passes over all M entries (rankrepro.losses.passes): exact at sizes where the grid
lookup runs, ties, ignored entries, retain_graph, the fixed-shape grid, the pass count."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import loss_oracles as oracle
from loss_cases import assert_close, assert_matches_oracle, binary, random_problem
from rankrepro.losses import alrp_loss, ap_loss, bucketed_ap_loss, bucketed_rank_sort_loss, rank_sort_loss
from rankrepro.losses.binning import MIN_QUERIES, WIDTH, Grid, compare_dtype, count_at_or_below, count_with_grid

SIZE = MIN_QUERIES + 4000  # above the eager grid's threshold: the grid lookup runs


def _large_problem(seed, num_pos, round_to=None, ignore=0.05):
    """Many entries, few positives (the oracle stays cheap); ties if ``round_to``."""
    return random_problem(torch.Generator().manual_seed(seed), SIZE, num_pos / SIZE, ignore, round_to)


@pytest.mark.parametrize("delta", [0.0, 0.5])
@pytest.mark.parametrize("round_to", [None, 0.25], ids=["distinct", "ties"])
def test_large_inputs_match_oracle(delta, round_to):
    logits, targets = _large_problem(3 + (round_to is not None), 12, round_to)
    x = logits.clone().requires_grad_()
    what = f"delta {delta} ties {round_to}"
    assert_matches_oracle(rank_sort_loss(x, targets, delta), x, *oracle.rank_sort(logits, targets, delta), f"RS {what}")
    labels = binary(targets)
    assert_matches_oracle((ap_loss(x, labels, delta),), x, *oracle.ap(logits, labels, delta), f"AP {what}")
    assert_matches_oracle(
        (bucketed_ap_loss(x, labels, delta),), x, *oracle.bucketed_ap(logits, labels, delta), f"BAP {what}"
    )
    loc = torch.rand(int((labels > 0).sum()), dtype=torch.float64)
    (cls_value, _), (cls_grad, _) = oracle.alrp(logits, labels, loc, delta)
    assert_matches_oracle((alrp_loss(x, labels, loc, delta)[0],), x, (cls_value,), (cls_grad,), f"aLRP {what}")


def test_large_bucketed_rank_sort_matches_oracle():
    logits, targets = _large_problem(5, 10, round_to=0.5)
    x = logits.clone().requires_grad_()
    assert_matches_oracle(
        bucketed_rank_sort_loss(x, targets, 0.5), x, *oracle.bucketed_rank_sort(logits, targets, 0.5), "BRS"
    )


def test_non_finite_ignored_logits_and_retain_graph():
    """NaN / inf at ignored entries take no part; a second backward gives the same gradient."""
    logits, targets = _large_problem(7, 10)
    ignored = torch.nonzero(targets < 0).squeeze(1)
    dirty = logits.clone()
    dirty[ignored[::2]] = float("nan")
    dirty[ignored[1::2]] = -float("inf")
    x = dirty.clone().requires_grad_()
    clean = logits.clone().requires_grad_()
    for loss in (rank_sort_loss, bucketed_rank_sort_loss):
        got, want = loss(x, targets, 0.5), loss(clean, targets, 0.5)
        for a, b in zip(got, want):
            assert_close(a.item(), b.item(), f"{loss.__name__} value")
        first = torch.autograd.grad(sum(got), x, retain_graph=True)[0]
        second = torch.autograd.grad(sum(got), x)[0]
        reference = torch.autograd.grad(sum(want), clean)[0]
        assert torch.equal(first, second), loss.__name__
        assert_close(first, reference, f"{loss.__name__} gradient")
        assert (first[ignored] == 0).all()


def test_float32_logits_round_the_float64_gradient_once():
    logits, targets = _large_problem(9, 40)
    low = logits.float().requires_grad_()
    high = low.detach().double().requires_grad_()
    targets = targets.float()
    for loss in (rank_sort_loss, bucketed_rank_sort_loss):
        g32 = torch.autograd.grad(sum(loss(low, targets, 0.5)), low)[0]
        g64 = torch.autograd.grad(sum(loss(high, targets.double(), 0.5)), high)[0]
        assert g32.dtype == torch.float32
        assert torch.equal(g32, g64.float()), loss.__name__


def _table(seed, size, tied):
    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(size, generator=gen, dtype=torch.float64)
    if tied:
        table = (table * 4).round() / 4
    return torch.sort(table).values, gen


def _queries(table, gen, offset=0.0):
    x = torch.randn(20000, generator=gen, dtype=torch.float64) * 3 + offset
    picks = table[torch.randint(0, table.numel(), (3000,), generator=gen)]
    x[:1000] = picks[:1000]
    x[1000:2000] = torch.nextafter(picks[1000:2000], torch.tensor(-torch.inf, dtype=torch.float64))
    x[2000:3000] = torch.nextafter(picks[2000:3000], torch.tensor(torch.inf, dtype=torch.float64))
    return x


@pytest.mark.parametrize("size", [1, 2, 20, 200, 3000])
@pytest.mark.parametrize("tied", [False, True])
def test_fixed_shape_grid_matches_searchsorted(size, tied):
    table, gen = _table(size + 10 * tied, size, tied)
    grid = Grid.build(table, fixed=True)
    assert grid is not None and grid.fits, "random tables fit the fixed width after refinement"
    x = _queries(table, gen)
    want = torch.searchsorted(table, x, right=True)
    assert torch.equal(grid.count_fixed(x), want)
    assert torch.equal(grid.count(x), want)


@pytest.mark.parametrize("size", [3, 200, 2000])
def test_grid_with_a_few_ties_lists_repeated_entries(size):
    """A table with a few repeated entries: the fixed form lists them repeatedly (no
    multiplicities) and still counts like searchsorted, at and around the repeats."""
    table, gen = _table(30 + size, size, False)
    table = torch.sort(torch.cat((table, table[[0, size // 2, -1]]))).values  # three entries twice
    grid = Grid.build(table, fixed=True)
    assert grid.tied and not grid.packed_tied and grid.fits
    x = _queries(table, gen)
    want = torch.searchsorted(table, x, right=True)
    assert torch.equal(grid.count_fixed(x), want)
    assert torch.equal(grid.count(x), want)
    got = count_with_grid(x.float(), grid.packed(torch.float32), grid.origin, grid.scale, grid.cells + 1.0, False)
    assert torch.equal(got.long(), torch.searchsorted(table, x.float().double(), right=True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("tied", [False, True])
def test_narrow_packed_grid_is_exact_for_narrow_scores(dtype, tied):
    """The float32 packed table (entries rounded up) gives searchsorted's counts for scores
    of a narrower dtype, at the scores' own neighbours of every table entry too."""
    table, gen = _table(7 + tied, 300, tied)
    table = table + 0.1  # tied entries stay tied, and need rounding to float32
    grid = Grid.build(table, fixed=True)
    assert compare_dtype(torch.zeros(1, dtype=dtype), table) == torch.float32
    picks = table[torch.randint(0, table.numel(), (4000,), generator=gen)].to(dtype)
    up = torch.tensor(torch.inf, dtype=dtype)
    x = torch.cat((_queries(table, gen).to(dtype), picks, torch.nextafter(picks, up), torch.nextafter(picks, -up)))
    want = torch.searchsorted(table, x.double(), right=True)
    got = count_with_grid(x, grid.packed(torch.float32), grid.origin, grid.scale, grid.cells + 1.0, grid.packed_tied)
    assert torch.equal(got.long(), want)
    assert not torch.equal(grid.packed(torch.float32).double(), grid.packed()), "the table has entries to round"


def test_grid_far_from_zero_and_constant_tables():
    """Scores of magnitude 1e6 within a range of 1e-3, and a table of equal entries."""
    table, gen = _table(4, 300, False)
    table = 1e6 + table * 1e-3
    x = 1e6 + (_queries(table, gen) - 1e6) * 1e-3
    x[:1000] = table[torch.randint(0, 300, (1000,), generator=gen)]
    want = torch.searchsorted(table, x, right=True)
    grid = Grid.build(table, fixed=True)
    assert torch.equal(grid.count_fixed(x), want) and torch.equal(grid.count(x), want)
    constant = torch.full((5,), 2.5, dtype=torch.float64)
    x = torch.tensor([2.0, 2.5, 3.0, float(torch.nextafter(torch.tensor(2.5), torch.tensor(0.0)))] * 20000,
                     dtype=torch.float64)
    grid = Grid.build(constant, fixed=True)
    assert torch.equal(grid.count_fixed(x), torch.searchsorted(constant, x, right=True))
    assert torch.equal(count_at_or_below(constant, x), torch.searchsorted(constant, x, right=True))


def test_crowded_table_reports_that_it_does_not_fit():
    """More than WIDTH distinct entries closer than any cell: the fixed form is not offered."""
    close = 0.5 + torch.arange(WIDTH + 1, dtype=torch.float64) * 1e-12
    table = torch.sort(torch.cat((torch.tensor([0.0, 1.0], dtype=torch.float64), close))).values
    grid = Grid.build(table, fixed=True)
    assert not grid.fits
    x = torch.linspace(-1, 2, MIN_QUERIES + 11, dtype=torch.float64)
    x[: WIDTH + 1] = close
    assert torch.equal(count_at_or_below(table, x), torch.searchsorted(table, x, right=True))


class _CountPasses(TorchDispatchMode):
    """Counts the aten calls, and those with an input or output of at least ``size`` elements."""

    def __init__(self, size):
        super().__init__()
        self.size, self.calls, self.passes = size, 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.calls += 1
        tensors = [t for t in torch.utils._pytree.tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)]
        if func.overloadpacket not in (torch.ops.aten.view, torch.ops.aten.detach) and any(
            t.numel() >= self.size for t in tensors
        ):
            self.passes += 1
        return out


def test_rank_sort_touches_all_entries_a_bounded_number_of_times():
    """Forward + backward of RS (eager): the aten calls that see an M-length tensor do not
    grow with P; 4 more where grid cells hold several breakpoints (their exact search)."""
    counts = []
    for num_pos in (10, 200):
        logits, targets = _large_problem(11, num_pos, ignore=0.0)
        x = logits.float().requires_grad_()
        with _CountPasses(SIZE) as counter:
            sum(rank_sort_loss(x, targets.float(), 0.5)).backward()
        counts.append(counter.passes)
    assert counts[0] <= 26 and counts[1] <= 30, counts


def test_negative_weights_scale_the_clamped_gradient():
    """A loss term weighted by a negative number gets exactly that multiple of the gradient
    (the clamp of rounding residues follows the sign of the incoming gradient)."""
    logits, targets = _large_problem(13, 30, round_to=0.25)
    x = logits.clone().requires_grad_()
    for loss in (rank_sort_loss, bucketed_rank_sort_loss):
        ranking = loss(x, targets, 0.5)[0]
        plain = torch.autograd.grad(ranking, x, retain_graph=True)[0]
        flipped = torch.autograd.grad(-2.0 * ranking, x)[0]
        assert torch.equal(flipped, -2.0 * plain), loss.__name__
        assert (plain[targets == 0] >= 0).all() and (flipped[targets == 0] <= 0).all()
