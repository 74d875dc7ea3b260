"""The sorting term of RS Loss: its three methods (dense, square-root blocks, dyadic) give the
pairwise definition (RS paper Eq. 7-8, 11-12) to 1e-12, at block boundaries and with ties,
and each issues a fixed number of tensor operations with no P x P intermediate."""
from collections import Counter

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import rankrepro.losses.sorting as sorting
from loss_cases import random_problem
from rankrepro.losses import bucketed_rank_sort_loss, rank_sort_loss
from rankrepro.losses.sorting import METHODS, misranked_pairs, sorting_errors, sorting_method
from rankrepro.losses.sorting_blocks import SqrtLabelBlocks, block_size
from rankrepro.losses.step_sums import StepSums

RTOL = 1e-12
DELTAS = [0.0, 0.5, 2.0]


def _positives(P, seed, score_tie=None, label_tie=None):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(P, generator=gen, dtype=torch.float64) * 2.0
    labels = torch.rand(P, generator=gen, dtype=torch.float64) * 0.95 + 0.05
    if score_tie is not None:
        scores = (scores / score_tie).round() * score_tie
    if label_tie is not None:
        labels = (labels / label_tie).ceil() * label_tie
    return scores, labels


def _pairwise(scores, labels, delta, eps):
    """Eq. 7-8 and 11-12 written out over the P x P pairs (float64)."""
    diff = scores[None, :] - scores[:, None]  # [i, j] = s_j - s_i
    H = (diff / (2 * delta) + 0.5).clamp(0, 1) if delta > 0 else (diff >= 0).double()
    misranked = H * (labels[None, :] < labels[:, None])
    w = 1.0 - labels
    rank, mass = H.sum(1), misranked.sum(1)
    target = (H @ w - misranked @ w) / (rank - mass)
    errors = (H @ w) / rank - target
    active = mass > eps
    share = torch.where(active, errors / mass.clamp_min(1e-300), torch.zeros_like(errors))
    grads = share @ misranked - torch.where(active, errors, torch.zeros_like(errors))
    return errors, grads


def _inputs(scores, delta):
    step = StepSums(scores, delta)
    intervals = step.locate(scores)
    return step, intervals, step.anchor_sums(scores, intervals)


def _run(scores, labels, delta, eps=1e-10, method=None):
    step, intervals, rank_pos = _inputs(scores, delta)
    return sorting_errors(step, intervals, labels, rank_pos, eps, method=method)


def _assert_rel(actual, expected, what, rtol=RTOL):
    scale = expected.abs().max().item() if expected.numel() else 0.0
    err = (actual - expected).abs().max().item() if expected.numel() else 0.0
    assert err <= rtol * max(scale, 1e-300), f"{what}: max abs error {err:.3e} (scale {scale:.3e})"
    assert torch.isfinite(actual).all(), what


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize("P", [1, 2, 3, 15, 16, 17, 63, 64, 65])
@pytest.mark.parametrize("ties", ["none", "scores", "labels", "both"])
def test_every_method_matches_the_pairwise_definition(method, delta, P, ties):
    """P = 1, 2, perfect squares (16, 64: block boundaries) and one either side."""
    score_tie = 0.5 if ties in ("scores", "both") else None
    label_tie = 0.25 if ties in ("labels", "both") else None
    scores, labels = _positives(P, seed=P * 31 + int(delta * 10), score_tie=score_tie, label_tie=label_tie)
    errors, grads = _run(scores, labels, delta, method=method)
    expected_errors, expected_grads = _pairwise(scores, labels, delta, 1e-10)
    _assert_rel(errors, expected_errors, f"{method} errors")
    _assert_rel(grads, expected_grads, f"{method} gradient")


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize("P", [399, 400, 401, 1023, 1024, 1025])
def test_blocks_equal_dyadic_around_perfect_squares(delta, P):
    """Above the dense range the reference is the dyadic method (the former default);
    block_size(400) = 20 divides P exactly, 399 / 401 leave a short last block.

    Rounding grows with P: against errors computed from correctly rounded sums
    (math.fsum, exact fractions after), the dyadic method was off by up to 1.6e-12 of the
    largest error at P = 400 and 1024 (delta = 0.5) and the blocks by up to 1.1e-12, so
    the two are compared at 4e-12 here."""
    scores, labels = _positives(P, seed=P, score_tie=0.05, label_tie=0.02)
    reference = _run(scores, labels, delta, method="dyadic")
    blocks = _run(scores, labels, delta, method="blocks")
    for got, want, what in zip(blocks, reference, ("errors", "gradient")):
        _assert_rel(got, want, f"P={P} {what}", rtol=4e-12)


@pytest.mark.parametrize("delta", [0.0, 0.5])
@pytest.mark.parametrize("block", [1, 2, 7, 50, 61, 200])
def test_any_block_size_gives_the_same_sums(delta, block):
    """Blocks of one position (all whole blocks), of P or more (all partial) and between."""
    scores, labels = _positives(61, seed=block, score_tie=0.25, label_tie=0.1)
    step = StepSums(scores, delta)
    intervals = step.locate(scores)
    weights = 1.0 - labels
    anchor_weights = torch.linspace(-1.0, 2.0, 61, dtype=torch.float64)
    reference = misranked_pairs(step, intervals, labels, "dense")
    blocks = SqrtLabelBlocks(step, intervals, labels, block=block)
    for got, want in zip(blocks.anchor_sums(weights), reference.anchor_sums(weights)):
        _assert_rel(got, want, f"block {block} anchor sums")
    _assert_rel(blocks.item_sums(anchor_weights), reference.item_sums(anchor_weights), f"block {block} item sums")


def test_block_size_is_ceil_sqrt():
    assert [block_size(p) for p in (1, 2, 4, 5, 399, 400, 401)] == [1, 2, 2, 3, 20, 20, 21]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("eps", [0.0, 1e-10])
def test_no_misranked_pairs_gives_zero_without_nan(method, eps):
    """Labels increasing with the scores (hard step: nobody is outranked by a smaller label)
    and all labels equal: errors 0, gradient 0, also with BRS's eps = 0."""
    scores = torch.linspace(-2.0, 2.0, 40, dtype=torch.float64)
    for labels in (torch.linspace(0.1, 1.0, 40, dtype=torch.float64), torch.full((40,), 0.7, dtype=torch.float64)):
        errors, grads = _run(scores, labels, 0.0, eps=eps, method=method)
        assert torch.equal(errors.abs(), torch.zeros(40, dtype=torch.float64))
        assert torch.equal(grads.abs(), torch.zeros(40, dtype=torch.float64))


def test_bad_method_and_block_raise():
    scores, labels = _positives(5, seed=1)
    step = StepSums(scores, 0.5)
    with pytest.raises(ValueError, match="sorting method must be one of"):
        misranked_pairs(step, step.locate(scores), labels, "pairwise")
    with pytest.raises(ValueError, match="block must be >= 1"):
        SqrtLabelBlocks(step, step.locate(scores), labels, block=0)


def test_default_method_follows_the_thresholds():
    assert sorting_method(1) == "dense"
    assert sorting_method(sorting.DENSE_MAX) == "dense"
    assert sorting_method(sorting.DENSE_MAX + 1) == "blocks"
    assert sorting_method(sorting.BLOCKS_MAX) == "blocks"
    assert sorting_method(sorting.BLOCKS_MAX + 1) == "dyadic"


@pytest.mark.parametrize("loss", [rank_sort_loss, bucketed_rank_sort_loss])
@pytest.mark.parametrize("delta", [0.0, 0.5])
def test_whole_loss_is_the_same_with_every_method(monkeypatch, loss, delta):
    """Values and autograd gradients of RS / BRS with each method forced (about 600
    positives, tied scores and labels)."""
    gen = torch.Generator().manual_seed(23)
    logits, targets = random_problem(gen, 2000, pos_frac=0.3, ignore_frac=0.05, round_to=0.02)
    targets = torch.where(targets > 0, (targets / 0.05).ceil() * 0.05, targets)
    results = {}
    for method, dense_max, blocks_max in (("dense", 10**9, 10**9), ("blocks", 0, 10**9), ("dyadic", 0, 0)):
        monkeypatch.setattr(sorting, "DENSE_MAX", dense_max)
        monkeypatch.setattr(sorting, "BLOCKS_MAX", blocks_max)
        assert sorting_method(int((targets > 0).sum())) == method
        x = logits.clone().requires_grad_()
        ranking, sort_loss = loss(x, targets, delta)
        (grad,) = torch.autograd.grad(sort_loss, x)
        results[method] = (ranking.detach(), sort_loss.detach(), grad)
    for method in ("blocks", "dyadic"):
        for got, want, what in zip(results[method], results["dense"], ("ranking", "sorting", "gradient")):
            _assert_rel(got, want, f"{loss.__name__} {method} {what}")


@pytest.mark.parametrize("delta", [0.0, 0.5])
def test_dyadic_in_level_groups_is_unchanged(monkeypatch, delta):
    """Above GROUP_ROWS rows the dyadic levels are processed in groups (memory bound)."""
    scores, labels = _positives(800, seed=8, score_tie=0.05, label_tie=0.05)
    whole = _run(scores, labels, delta, method="dyadic")
    monkeypatch.setattr(sorting._LabelPrefixBlocks, "GROUP_ROWS", 2000)  # about 2 levels per group
    grouped = _run(scores, labels, delta, method="dyadic")
    for got, want in zip(grouped, whole):
        _assert_rel(got, want, "grouped")


class _OpLog(TorchDispatchMode):
    """Counts the tensor operations dispatched and the largest tensor any of them returned."""

    def __init__(self):
        super().__init__()
        self.ops = Counter()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops[str(func.overloadpacket)] += 1
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def _logged(fn):
    with _OpLog() as log:
        fn()
    return log


@pytest.mark.parametrize("delta", [0.0, 0.5])
@pytest.mark.parametrize("method,small,large", [("dense", 20, 200), ("blocks", 300, 3000), ("dyadic", 300, 3000)])
def test_operation_count_does_not_grow_with_P(method, small, large, delta):
    """Issue 16 (2-thread slowdown): the cost must not come from many small operations,
    each a parallel region that a busy machine makes wait; and no P x P intermediate
    outside the dense range."""
    logs = []
    for P in (small, large):
        scores, labels = _positives(P, seed=P, score_tie=0.01, label_tie=0.05)
        step, intervals, rank_pos = _inputs(scores, delta)
        logs.append(_logged(lambda: sorting_errors(step, intervals, labels, rank_pos, 1e-10, method=method)))
    assert logs[0].ops == logs[1].ops
    assert sum(logs[1].ops.values()) <= (40 if method == "dense" else 160)
    if method == "blocks":
        assert logs[1].largest <= 4 * (block_size(large) + 1) * (large + 1) * 4  # 4 columns, P/B + 1 rows
    if method == "dyadic":
        assert logs[1].largest <= 8 * 13 * (large + 1)  # a few columns per level, log2(P) + 1 levels
    if method != "dense":
        assert logs[1].largest < large * large / 10


def test_whole_rank_sort_at_20000_positives_has_few_operations():
    """The issue's case (P = 20,000): the former blocked sorting term issued 253,549
    operations per RS forward + backward; now a fixed few hundred, as at P = 5,000 (up to
    a few data-dependent fallbacks of the M-length passes), and no tensor of P x P / 100
    entries."""
    gen = torch.Generator().manual_seed(3)
    counts = []
    for P in (5000, 20000):
        logits = torch.randn(50000, generator=gen) * 1.5 - 3.0
        targets = torch.zeros(50000)
        targets[torch.randperm(50000, generator=gen)[:P]] = torch.rand(P, generator=gen) * 0.95 + 0.05

        def step():
            x = logits.clone().requires_grad_()
            sum(rank_sort_loss(x, targets, 0.5)).backward()

        log = _logged(step)
        counts.append(sum(log.ops.values()))
    assert abs(counts[0] - counts[1]) <= 10 and counts[1] < 600
    assert log.largest < 20000 * 20000 / 100
