"""Deliberately slow reference losses, written straight from the papers' equations.

One Python loop over the positives, one full row of H per positive, everything float64
and nothing shared with ``rankrepro.losses``.  Used only by the tests and, for speed
comparison, by ``benchmarks/loss_speed.py``.  Each oracle returns ``(values, grads)``:
the loss values as floats and, per value, the identity-update gradient w.r.t. the
flattened logits (a float64 tensor).
"""
from __future__ import annotations

from fractions import Fraction

import torch


def H(x, delta):
    """Smoothed step of RS paper Eq. 4; hard step [x >= 0] for delta = 0."""
    if delta > 0:
        return torch.clamp(x / (2 * delta) + 0.5, 0.0, 1.0)
    return (x >= 0).double()


def _flat(logits, targets):
    s = logits.detach().reshape(-1).double()
    y = targets.detach().reshape(-1).double()
    return s, y, torch.nonzero(y > 0).flatten(), torch.nonzero(y == 0).flatten()


def _rank_sort_core(s_pos, y_pos, neg_scores, neg_counts, delta, eps):
    """RS Eq. 6-12 for positives vs. scored negatives with multiplicities.

    Returns ranking/sorting errors, positive gradients of both terms and the per-unit
    gradient of each negative entry (not yet divided by |P|).
    """
    P = len(s_pos)
    lr = torch.zeros(P, dtype=torch.float64)
    ls = torch.zeros(P, dtype=torch.float64)
    g_rank_pos = torch.zeros(P, dtype=torch.float64)
    g_sort_pos = torch.zeros(P, dtype=torch.float64)
    g_neg = torch.zeros(len(neg_scores), dtype=torch.float64)
    for i in range(P):
        h_pos = H(s_pos - s_pos[i], delta)  # includes i itself
        h_neg = H(neg_scores - s_pos[i], delta)
        rank_pos = h_pos.sum()
        fp = (h_neg * neg_counts).sum()
        lr[i] = fp / (rank_pos + fp)
        current = (h_pos * (1 - y_pos)).sum() / rank_pos
        target_mask = (y_pos >= y_pos[i]).double()
        target = (h_pos * target_mask * (1 - y_pos)).sum() / (h_pos * target_mask).sum()
        ls[i] = current - target
        if fp > eps:
            g_rank_pos[i] -= lr[i]
            g_neg += h_neg * lr[i] / fp
        missorted = h_pos * (1 - target_mask)
        denom = missorted.sum()
        if denom > eps:
            g_sort_pos[i] -= ls[i]
            g_sort_pos += missorted * ls[i] / denom
    return lr, ls, g_rank_pos, g_sort_pos, g_neg


def rank_sort(logits, targets, delta=0.5, eps=1e-10):
    s, y, pos, neg = _flat(logits, targets)
    P = len(pos)
    g_rank = torch.zeros_like(s)
    g_sort = torch.zeros_like(s)
    if P == 0:
        return (0.0, 0.0), (g_rank, g_sort)
    lr, ls, grp, gsp, gn = _rank_sort_core(s[pos], y[pos], s[neg], torch.ones(len(neg), dtype=torch.float64), delta, eps)
    g_rank[pos] = grp / P
    g_rank[neg] = gn / P
    g_sort[pos] = gsp / P
    return (lr.mean().item(), ls.mean().item()), (g_rank, g_sort)


def _buckets(s, y, pos, neg, delta):
    """Bucketed paper: in descending score order, the relevant negatives between two
    consecutive positives form one bucket (ties: negatives before positives)."""
    threshold = s[pos].min() - delta
    entries = sorted([(-s[k].item(), 0, k) for k in neg] + [(-s[k].item(), 1, k) for k in pos])
    buckets, current = [], []
    for _, is_pos, k in entries:
        if is_pos:
            if current:
                buckets.append(current)
            current = []
        elif s[k] >= threshold:
            current.append(k)
    if current:
        buckets.append(current)
    return buckets


def bucketed_rank_sort(logits, targets, delta=0.5):
    s, y, pos, neg = _flat(logits, targets)
    P = len(pos)
    g_rank = torch.zeros_like(s)
    g_sort = torch.zeros_like(s)
    if P == 0:
        return (0.0, 0.0), (g_rank, g_sort)
    buckets = _buckets(s, y, pos.tolist(), neg.tolist(), delta)
    # The exact mean, rounded once (fsum(...) / len rounds twice: the mean of six equal
    # scores could come out one ulp below them, i.e. below a tied positive for delta = 0).
    means = torch.tensor([float(sum(map(Fraction, s[b].tolist())) / len(b)) for b in buckets], dtype=torch.float64)
    counts = torch.tensor([float(len(b)) for b in buckets], dtype=torch.float64)
    lr, ls, grp, gsp, gn = _rank_sort_core(s[pos], y[pos], means, counts, delta, eps=0.0)
    g_rank[pos] = grp / P
    for b, g in zip(buckets, gn):
        g_rank[b] = g / P
    g_sort[pos] = gsp / P
    return (lr.mean().item(), ls.mean().item()), (g_rank, g_sort)


def bucketed_ap(logits, targets, delta=1.0):
    s, y, pos, neg = _flat(logits, targets)
    binary = (y > 0).double() + torch.where(y < 0, -1.0, 0.0).double()
    (ranking, _), (g_rank, _) = bucketed_rank_sort(logits.detach().reshape(-1), binary, delta)
    return (ranking,), (g_rank,)


def ap(logits, targets, delta=1.0):
    """AP Loss with interpolated precision: loop over positives in ascending score order."""
    s, y, pos, neg = _flat(logits, targets)
    P = len(pos)
    grad = torch.zeros_like(s)
    if P == 0:
        return (0.0,), (grad,)
    s_pos, s_neg = s[pos], s[neg]
    g_pos = torch.zeros(P, dtype=torch.float64)
    g_neg = torch.zeros(len(neg), dtype=torch.float64)
    interpolated = torch.zeros(P, dtype=torch.float64)
    best = 0.0
    for i in sorted(range(P), key=lambda k: s_pos[k].item()):
        h_pos = H(s_pos - s_pos[i], delta)
        h_pos[i] = 0.0
        h_neg = H(s_neg - s_pos[i], delta)
        rank_pos = 1 + h_pos.sum()
        fp = h_neg.sum()
        best = max(best, (rank_pos / (rank_pos + fp)).item())
        interpolated[i] = best
        g_pos[i] = -(1 - best)
        if fp > 0:
            g_neg += h_neg * (1 - best) / fp
    grad[pos] = g_pos / P
    grad[neg] = g_neg / P
    return ((1 - interpolated).mean().item(),), (grad,)


def alrp(logits, targets, loc_errors, delta=1.0, eps=1e-5):
    """aLRP Loss: cls value and gradient, loc value and its gradient w.r.t. loc_errors."""
    s, y, pos, neg = _flat(logits, targets)
    P = len(pos)
    grad = torch.zeros_like(s)
    loc = loc_errors.detach().double()
    if P == 0:
        return (0.0, 0.0), (grad, torch.zeros_like(loc))
    s_pos, s_neg = s[pos], s[neg]
    g_pos = torch.zeros(P, dtype=torch.float64)
    g_neg = torch.zeros(len(neg), dtype=torch.float64)
    rank = torch.zeros(P, dtype=torch.float64)
    precision = torch.zeros(P, dtype=torch.float64)
    for i in range(P):
        h_pos = H(s_pos - s_pos[i], delta)
        h_pos[i] = 0.0
        h_neg = H(s_neg - s_pos[i], delta)
        rank_pos = 1 + h_pos.sum()
        fp = h_neg.sum()
        rank[i] = rank_pos + fp
        precision[i] = rank_pos / rank[i]
        if fp > eps:
            g_pos[i] = -((h_pos * loc).sum() + fp) / rank[i]
            g_neg += h_neg * (-g_pos[i]) / fp
    grad[pos] = g_pos / P
    grad[neg] = g_neg / P
    # Localisation: positives in descending score order (stable), running sum / rank.
    order = sorted(range(P), key=lambda k: -s_pos[k].item())
    loc_value, running = 0.0, 0.0
    loc_grad = torch.zeros(P, dtype=torch.float64)
    for position, k in enumerate(order):
        running += loc[k].item()
        loc_value += running / rank[k].item()
        for earlier in order[: position + 1]:
            loc_grad[earlier] += 1.0 / rank[k].item()
    return ((1 - precision).mean().item(), loc_value / P), (grad, loc_grad / P)
