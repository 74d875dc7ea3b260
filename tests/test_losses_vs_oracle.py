"""The fast losses equal the slow per-positive oracles (values and gradients, float64)."""
import pytest
import torch

import loss_oracles as oracle
from loss_cases import assert_close, assert_matches_oracle, binary, random_problem
from rankrepro.losses import alrp_loss, ap_loss, bucketed_ap_loss, bucketed_rank_sort_loss, rank_sort_loss

DELTAS = [0.0, 0.25, 0.5, 1.0, 3.0]
# (size, positive fraction, rounding for ties, ignored fraction)
CASES = [
    (1, 1.0, None, 0.0),
    (2, 0.5, None, 0.0),
    (7, 0.3, None, 0.2),
    (40, 0.3, None, 0.1),
    (40, 0.3, 0.5, 0.1),  # many ties, within and across labels
    (40, 0.05, 1.0, 0.0),  # few positives, coarse ties
    (120, 0.5, None, 0.3),
    (300, 0.02, None, 0.05),
]


def _run_all(logits, targets, delta, tag):
    x = logits.clone().requires_grad_()
    assert_matches_oracle(rank_sort_loss(x, targets, delta), x, *oracle.rank_sort(logits, targets, delta), f"RS {tag}")
    assert_matches_oracle(
        bucketed_rank_sort_loss(x, targets, delta), x, *oracle.bucketed_rank_sort(logits, targets, delta), f"BRS {tag}"
    )
    labels = binary(targets)
    assert_matches_oracle((ap_loss(x, labels, delta),), x, *oracle.ap(logits, labels, delta), f"AP {tag}")
    assert_matches_oracle(
        (bucketed_ap_loss(x, labels, delta),), x, *oracle.bucketed_ap(logits, labels, delta), f"BAP {tag}"
    )
    num_pos = int((labels > 0).sum())
    loc = torch.rand(num_pos, dtype=torch.float64).requires_grad_()
    cls_loss, loc_loss = alrp_loss(x, labels, loc, delta)
    (cls_value, loc_value), (cls_grad, loc_grad) = oracle.alrp(logits, labels, loc, delta)
    assert_matches_oracle((cls_loss,), x, (cls_value,), (cls_grad,), f"aLRP cls {tag}")
    assert_close(loc_loss.item(), loc_value, f"aLRP loc {tag}")
    if num_pos:
        (grad,) = torch.autograd.grad(loc_loss, loc)
        assert_close(grad, loc_grad, f"aLRP loc gradient {tag}")


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"M{c[0]}-p{c[1]}-tie{c[2]}-ign{c[3]}")
def test_random_cases_match_oracle(case, delta):
    size, pos_frac, round_to, ignore = case
    gen = torch.Generator().manual_seed(size * 7919 + int(delta * 100))
    for repeat in range(3):
        logits, targets = random_problem(gen, size, pos_frac, ignore, round_to)
        _run_all(logits, targets, delta, f"case {case} delta {delta} repeat {repeat}")


@pytest.mark.parametrize("delta", [0.0, 0.5])
def test_ties_between_positives_and_negatives(delta):
    logits = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 2.0, 2.0, 0.5], dtype=torch.float64)
    targets = torch.tensor([0.7, 0.0, 0.3, 0.0, 0.9, 0.0, 0.2, -1.0], dtype=torch.float64)
    _run_all(logits, targets, delta, "ties")


@pytest.mark.parametrize("delta", [0.5, 1.0])
def test_multidimensional_input_is_treated_as_flat(delta):
    gen = torch.Generator().manual_seed(5)
    logits, targets = random_problem(gen, 60)
    flat = rank_sort_loss(logits, targets, delta)
    grid = rank_sort_loss(logits.view(3, 4, 5), targets.view(3, 4, 5), delta)
    for a, b in zip(flat, grid):
        assert_close(a.item(), b.item(), "2-D vs flat")


def test_bucketed_equals_exact_for_hard_step():
    """Bucketing is exact for delta = 0 (Bucketed paper); our tie rule keeps it exact."""
    gen = torch.Generator().manual_seed(11)
    for round_to in (None, 0.5):
        logits, targets = random_problem(gen, 500, 0.1, 0.05, round_to)
        x = logits.clone().requires_grad_()
        exact = rank_sort_loss(x, targets, 0.0)
        bucketed = bucketed_rank_sort_loss(x, targets, 0.0)
        for a, b in zip(exact, bucketed):
            assert_close(a.item(), b.item(), "BRS vs RS at delta 0")
        assert_close(
            torch.autograd.grad(sum(exact), x)[0], torch.autograd.grad(sum(bucketed), x)[0], "gradients at delta 0"
        )


def test_bucketed_differs_from_exact_for_smoothed_step():
    """For delta > 0 the bucket mean is an approximation: make sure we did not silently run RS."""
    logits = torch.tensor([0.0, 0.1, 3.0, -0.9], dtype=torch.float64)
    targets = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    exact, _ = rank_sort_loss(logits, targets, 0.5)
    bucketed, _ = bucketed_rank_sort_loss(logits, targets, 0.5)
    # Exact: N_FP = H(0.1) + H(3) = 0.6 + 1; bucketed: one bucket {0.1, 3} of mean 1.55
    # above the positive counts 2 * H(1.55) = 2; -0.9 < 0 - delta is irrelevant for both.
    assert_close(exact.item(), 1.6 / 2.1, "exact ranking")
    assert_close(bucketed.item(), 2.0 / 2.5, "bucketed ranking")


def test_delta_is_used_by_bucketed_losses():
    """delta reaches the bucketed losses (as in the Bucketed repository, whose BRS / BAP take
    delta as third argument; there it is plain RS whose third slot is an unused weight)."""
    gen = torch.Generator().manual_seed(3)
    logits, targets = random_problem(gen, 200)
    values = {d: bucketed_rank_sort_loss(logits, targets, d)[0].item() for d in (0.1, 0.5, 2.0)}
    assert len(set(round(v, 12) for v in values.values())) == 3
    values = {d: bucketed_ap_loss(logits, binary(targets), d).item() for d in (0.1, 1.0, 2.0)}
    assert len(set(round(v, 12) for v in values.values())) == 3


@pytest.mark.parametrize("delta", [0.0, 0.5])
def test_large_problem_matches_oracle(delta):
    """Large enough (M > 65536, 2P > 64 breakpoints) to take the grid binning path."""
    gen = torch.Generator().manual_seed(99)
    logits, targets = random_problem(gen, 70000, pos_frac=0.0015, ignore_frac=0.05, round_to=0.01)
    _run_all(logits, targets, delta, f"large delta {delta}")


@pytest.mark.parametrize("method", ["blocks", "dyadic"])
@pytest.mark.parametrize("delta", [0.0, 0.5])
def test_many_positives_match_oracle(delta, method, monkeypatch):
    """~1400 positives, labels and scores both tied (labels on a 0.05 grid, scores on a 0.01
    grid), through the sorting term's square-root label blocks (its default at this P) and,
    forced by lowering ``BLOCKS_MAX``, its dyadic label blocks (11 levels; the default above
    4,096 positives, which no oracle-sized problem reaches)."""
    from rankrepro.losses import sorting

    if method == "dyadic":
        monkeypatch.setattr(sorting, "BLOCKS_MAX", 0)
    gen = torch.Generator().manual_seed(17)
    logits, targets = random_problem(gen, 3000, pos_frac=0.5, ignore_frac=0.05, round_to=0.01)
    targets = torch.where(targets > 0, (targets / 0.05).ceil() * 0.05, targets)
    x = logits.clone().requires_grad_()
    assert_matches_oracle(rank_sort_loss(x, targets, delta), x, *oracle.rank_sort(logits, targets, delta), "RS")
    assert_matches_oracle(
        bucketed_rank_sort_loss(x, targets, delta), x, *oracle.bucketed_rank_sort(logits, targets, delta), "BRS"
    )
