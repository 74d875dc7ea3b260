"""Defined values for degenerate batches and clear errors for bad input."""
import math

import pytest
import torch

from loss_cases import assert_close, random_problem
from rankrepro.losses import alrp_loss, ap_loss, bucketed_ap_loss, bucketed_rank_sort_loss, rank_sort_loss


def _all_losses(logits, targets, delta=None):
    """Every loss as a list of terms (aLRP with zero localisation errors)."""
    num_pos = int((targets > 0).sum())
    loc = torch.zeros(num_pos, dtype=logits.dtype, requires_grad=True)
    kw = {} if delta is None else {"delta": delta}
    return {
        "rs": list(rank_sort_loss(logits, targets, **kw)),
        "brs": list(bucketed_rank_sort_loss(logits, targets, **kw)),
        "ap": [ap_loss(logits, targets, **kw)],
        "bap": [bucketed_ap_loss(logits, targets, **kw)],
        "alrp": list(alrp_loss(logits, targets, loc, **kw)),
    }


@pytest.mark.parametrize(
    "targets",
    [
        torch.zeros(6),  # no positives
        torch.full((6,), -1.0),  # all ignored
        torch.tensor([0.0, -1.0, 0.0, -1.0, 0.0, 0.0]),
    ],
    ids=["no-positives", "all-ignored", "negatives-and-ignored"],
)
def test_no_positives_gives_connected_zero_losses(targets):
    logits = torch.randn(6, requires_grad=True)
    for name, terms in _all_losses(logits, targets).items():
        for term in terms:
            assert term.item() == 0.0, name
        total = sum(terms)
        assert total.requires_grad, f"{name}: zero loss must stay connected to the graph"
        total.backward()
        assert torch.count_nonzero(logits.grad) == 0, name
        logits.grad = None


def test_empty_input():
    logits = torch.zeros(0, requires_grad=True)
    for name, terms in _all_losses(logits, torch.zeros(0)).items():
        assert all(t.item() == 0.0 for t in terms), name


def test_no_negatives():
    logits = torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0.3, 0.9, 0.6], dtype=torch.float64)
    ranking, sorting = rank_sort_loss(logits, targets)
    assert ranking.item() == 0.0
    assert sorting.item() > 0.0  # misordered: the 0.3 box scores highest
    assert ap_loss(logits, targets).item() == 0.0
    assert bucketed_ap_loss(logits, targets).item() == 0.0
    cls_loss, _ = alrp_loss(logits, targets, torch.zeros(3, dtype=torch.float64))
    assert cls_loss.item() == 0.0
    (grad,) = torch.autograd.grad(ranking, logits)
    assert torch.count_nonzero(grad) == 0


def test_no_relevant_negatives():
    """All negatives score below min positive - delta: they cannot change any rank."""
    logits = torch.tensor([1.0, 0.8, -5.0, -6.0], dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    for name, terms in _all_losses(logits, targets).items():
        if name != "alrp":
            assert terms[0].item() == 0.0, name
        grad = torch.autograd.grad(terms[0], logits)[0]
        assert torch.count_nonzero(grad[2:]) == 0, name


@pytest.mark.parametrize("delta", [0.0, 0.5])
def test_single_positive_alone(delta):
    logits = torch.tensor([0.3], requires_grad=True)
    targets = torch.tensor([0.7])
    ranking, sorting = rank_sort_loss(logits, targets, delta)
    assert ranking.item() == 0.0 and sorting.item() == 0.0
    assert ap_loss(logits, targets, delta).item() == 0.0
    cls_loss, loc_loss = alrp_loss(logits, targets, torch.tensor([0.25]), delta)
    assert cls_loss.item() == 0.0
    assert math.isclose(loc_loss.item(), 0.25)  # rank 1: cumsum 0.25 / 1


def test_single_negative_alone():
    logits = torch.tensor([0.3], requires_grad=True)
    for name, terms in _all_losses(logits, torch.tensor([0.0])).items():
        assert all(t.item() == 0.0 for t in terms), name


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_logits_raise(bad):
    logits = torch.tensor([0.5, bad, -1.0])
    targets = torch.tensor([1.0, 0.0, 0.0])
    for loss in (rank_sort_loss, bucketed_rank_sort_loss, ap_loss, bucketed_ap_loss):
        with pytest.raises(ValueError, match="NaN or inf"):
            loss(logits, targets)
    with pytest.raises(ValueError, match="NaN or inf"):
        alrp_loss(logits, targets, torch.tensor([0.1]))


def test_non_finite_logits_of_ignored_entries_are_ignored():
    logits = torch.tensor([0.5, float("nan"), -1.0], requires_grad=True)
    targets = torch.tensor([1.0, -1.0, 0.0])
    ranking, _ = rank_sort_loss(logits, targets)
    ranking.backward()
    assert torch.isfinite(ranking) and logits.grad[1].item() == 0.0


def test_nan_targets_raise():
    with pytest.raises(ValueError, match="targets contain NaN"):
        rank_sort_loss(torch.zeros(3), torch.tensor([1.0, float("nan"), 0.0]))


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        ap_loss(torch.zeros(3), torch.zeros(4))


@pytest.mark.parametrize("delta", [-0.1, float("nan"), float("inf")])
def test_bad_delta_raises(delta):
    with pytest.raises(ValueError, match="delta"):
        rank_sort_loss(torch.zeros(3), torch.tensor([1.0, 0.0, 0.0]), delta)


def test_alrp_loc_errors_must_match_positives():
    with pytest.raises(ValueError, match="one per positive"):
        alrp_loss(torch.zeros(3), torch.tensor([1.0, 1.0, 0.0]), torch.zeros(3))
    with pytest.raises(ValueError, match="loc_errors contain NaN"):
        alrp_loss(torch.zeros(3), torch.tensor([1.0, 0.0, 0.0]), torch.tensor([float("nan")]))


def test_integer_logits_raise():
    with pytest.raises(TypeError, match="floating-point"):
        ap_loss(torch.zeros(3, dtype=torch.long), torch.zeros(3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_inputs_match_float64(dtype):
    """Half-precision scores are accumulated in float64: same result as the float64 run
    on the same (rounded) scores; values and gradients come back in the input dtype."""
    gen = torch.Generator().manual_seed(21)
    logits64, targets64 = random_problem(gen, 2000, pos_frac=0.05)
    logits = logits64.to(dtype).requires_grad_()
    reference = logits.detach().double().requires_grad_()
    targets = targets64.to(dtype)
    ref_targets = targets.double()
    for loss in (rank_sort_loss, bucketed_rank_sort_loss):
        got, want = loss(logits, targets), loss(reference, ref_targets)
        assert got[0].dtype == dtype
        g = torch.autograd.grad(sum(got), logits)[0]
        w = torch.autograd.grad(sum(want), reference)[0]
        assert g.dtype == dtype
        for a, b in zip(got, want):
            assert_close(a.item(), b.to(dtype).item(), f"{loss.__name__} {dtype}")
        assert_close(g.double(), w.to(dtype).double(), f"{loss.__name__} grad {dtype}")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_inputs_are_not_modified(dtype):
    gen = torch.Generator().manual_seed(2)
    logits, targets = random_problem(gen, 500)
    logits, targets = logits.to(dtype), targets.to(dtype)
    logits_before, targets_before = logits.clone(), targets.clone()
    for name, terms in _all_losses(logits.requires_grad_(), targets).items():
        sum(terms).backward()
        assert torch.equal(logits.detach(), logits_before), name
        assert torch.equal(targets, targets_before), name


@pytest.mark.parametrize("loss", [rank_sort_loss, bucketed_rank_sort_loss])
@pytest.mark.parametrize(
    "bad",
    [
        torch.tensor([0.0, 3.0, 1.0, 0.0, 7.0, -1.0]),  # class indices passed by mistake
        torch.tensor([0.0, 0.5, torch.nextafter(torch.tensor(1.0), torch.tensor(2.0)).item(), 0.0, 0.0, 0.0]),
    ],
    ids=["class-indices", "just-above-1"],
)
def test_rank_sort_targets_above_one_raise(loss, bad):
    """RS / BRS labels are IoU / Dice values in (0, 1]: anything above 1 is a caller's bug."""
    with pytest.raises(ValueError, match=rf"{loss.__name__}: .*above 1"):
        loss(torch.randn(6), bad)


@pytest.mark.parametrize("loss", [rank_sort_loss, bucketed_rank_sort_loss])
def test_rank_sort_targets_contract_at_the_limits(loss):
    """1 is a valid label; any negative value is 'ignored', whatever its size."""
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, 5.0], dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([1.0, 0.0, 0.4, 0.0, -7.0], dtype=torch.float64)
    ranking, sorting = loss(logits, targets)
    # Positives at 2 (label 1) and 0 (label 0.4); the ignored 5 takes no part.
    reference = loss(logits[:4].detach(), targets[:4])
    assert ranking.item() == pytest.approx(reference[0].item(), abs=1e-15)
    assert sorting.item() == pytest.approx(reference[1].item(), abs=1e-15)
    assert ranking.item() > 0  # the negative at 1.0 outranks the positive at 0
    (grad,) = torch.autograd.grad(ranking + sorting, logits)
    assert grad[4].item() == 0.0


def test_binary_losses_only_use_the_sign_of_positive_targets():
    """AP / BAP / aLRP take any value > 0 as a positive (their documented contract)."""
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0], dtype=torch.float64)
    labels, indices = torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.tensor([3.0, 0.0, 7.0, 0.0])
    assert ap_loss(logits, indices).item() == ap_loss(logits, labels).item()
    assert bucketed_ap_loss(logits, indices).item() == bucketed_ap_loss(logits, labels).item()
    loc = torch.tensor([0.2, 0.6], dtype=torch.float64)
    assert [t.item() for t in alrp_loss(logits, indices, loc)] == [t.item() for t in alrp_loss(logits, labels, loc)]


LOW_AND_HIGH = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


@pytest.mark.parametrize("logits_dtype", LOW_AND_HIGH, ids=str)
@pytest.mark.parametrize("loc_dtype", LOW_AND_HIGH, ids=str)
def test_alrp_terms_come_back_in_the_logits_dtype(logits_dtype, loc_dtype):
    """Both aLRP terms are in the logits' dtype whatever the dtype of ``loc_errors``; the
    localisation term is the float64 value of the same (rounded) inputs, rounded once, and
    its gradient reaches ``loc_errors`` in their own dtype."""
    gen = torch.Generator().manual_seed(4)
    logits64, targets64 = random_problem(gen, 300, pos_frac=0.1)
    labels = torch.where(targets64 > 0, 1.0, targets64)
    num_pos = int((labels > 0).sum())
    logits = logits64.to(logits_dtype).requires_grad_()
    loc = torch.rand(num_pos, generator=gen, dtype=torch.float64).to(loc_dtype).requires_grad_()
    cls_loss, loc_loss = alrp_loss(logits, labels.to(logits_dtype), loc)
    assert cls_loss.dtype == logits_dtype and loc_loss.dtype == logits_dtype
    _, want = alrp_loss(logits.detach().double(), labels.to(logits_dtype).double(), loc.detach().double())
    assert loc_loss.item() == want.to(logits_dtype).item()
    (grad,) = torch.autograd.grad(loc_loss, loc)
    assert grad.dtype == loc_dtype


@pytest.mark.parametrize("logits_dtype", [torch.float16, torch.bfloat16, torch.float64], ids=str)
def test_alrp_without_positives_returns_the_logits_dtype(logits_dtype):
    logits = torch.randn(5).to(logits_dtype).requires_grad_()
    loc = torch.zeros(0, dtype=torch.float32, requires_grad=True)
    cls_loss, loc_loss = alrp_loss(logits, torch.zeros(5), loc)
    assert cls_loss.dtype == logits_dtype and loc_loss.dtype == logits_dtype
    assert loc_loss.item() == 0.0 and loc_loss.requires_grad


def test_sorting_term_is_zero_when_all_labels_are_equal():
    """No positive is misranked against another: sorting 0 and no sorting gradient."""
    gen = torch.Generator().manual_seed(6)
    logits, targets = random_problem(gen, 400, pos_frac=0.2)
    targets = torch.where(targets > 0, torch.full_like(targets, 0.6), targets)
    x = logits.clone().requires_grad_()
    _, sorting = rank_sort_loss(x, targets)
    (grad,) = torch.autograd.grad(sorting, x)
    assert sorting.item() == pytest.approx(0.0, abs=1e-15)
    assert grad.abs().max().item() < 1e-15


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_negative_zero_targets_are_negatives(dtype):
    """-0.0 is a negative like 0.0 (the positives are found on the targets' bits; -0.0 has
    a set sign bit), with and without ignored entries."""
    gen = torch.Generator().manual_seed(5)
    logits, targets = random_problem(gen, 500, pos_frac=0.1, ignore_frac=0.0)
    logits = logits.to(dtype)
    for with_ignored in (False, True):
        plain = targets.clone()
        if with_ignored:
            plain[:7] = -1.0
        signed = torch.where(plain == 0, torch.full_like(plain, -0.0), plain)
        assert torch.signbit(signed).sum() > torch.signbit(plain).sum()
        for name in ("rs", "brs", "ap", "bap"):
            results = []
            for t in (plain, signed):
                x = logits.clone().requires_grad_()
                terms = _all_losses(x, t.to(dtype))[name]
                results.append(([v.item() for v in terms], torch.autograd.grad(sum(terms), x)[0]))
            assert results[0][0] == results[1][0], name
            assert torch.equal(results[0][1], results[1][1]), name
