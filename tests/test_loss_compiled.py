"""The compiled passes over M (rankrepro.losses.set_compiled) give the eager result and do
not recompile when M and P change."""
import os
import subprocess
import sys

import pytest
import torch

from loss_cases import assert_close, binary, random_problem, term_gradients
from rankrepro.losses import (
    alrp_loss,
    ap_loss,
    bucketed_ap_loss,
    bucketed_rank_sort_loss,
    compiled_enabled,
    rank_sort_loss,
    set_compiled,
)
from rankrepro.losses import passes
from rankrepro.losses.passes import MIN_COMPILED

dynamo_counters = pytest.importorskip("torch._dynamo.utils").counters


def _losses(x, targets, delta):
    labels = binary(targets)
    loc = torch.linspace(0, 1, int((labels > 0).sum()), dtype=torch.float64)
    return {
        "RS": rank_sort_loss(x, targets, delta),
        "BRS": bucketed_rank_sort_loss(x, targets, delta),
        "AP": (ap_loss(x, labels, delta),),
        "BAP": (bucketed_ap_loss(x, labels, delta),),
        "aLRP": alrp_loss(x, labels, loc, delta)[:1],
    }


def _run(logits, targets, delta, compiled):
    initial = compiled_enabled()
    set_compiled(compiled)
    try:
        x = logits.clone().requires_grad_()
        out = _losses(x, targets, delta)
        return {name: ([v.item() for v in terms], term_gradients(x, terms)) for name, terms in out.items()}
    finally:
        set_compiled(initial)


def _problem(seed, size, num_pos, round_to=None, dtype=torch.float64):
    logits, targets = random_problem(torch.Generator().manual_seed(seed), size, num_pos / size, 0.05, round_to)
    return logits.to(dtype), targets.to(dtype)


@pytest.mark.parametrize("value, expected", [("1", True), ("0", False), (None, False)])
def test_environment_variable_switches_it_on(value, expected):
    env = {k: v for k, v in os.environ.items() if k != "RANKREPRO_COMPILE"}
    if value is not None:
        env["RANKREPRO_COMPILE"] = value
    code = "import rankrepro.losses as L; print(L.compiled_enabled())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(expected)


def test_switch_follows_the_environment_and_toggles():
    initial = compiled_enabled()
    assert initial == (os.environ.get("RANKREPRO_COMPILE", "0") not in ("", "0"))
    try:
        set_compiled(True)
        assert compiled_enabled()
        set_compiled(False)
        assert not compiled_enabled()
    finally:
        set_compiled(initial)


@pytest.mark.parametrize(
    "size, num_pos, delta, round_to, dtype",
    [
        (MIN_COMPILED + 1000, 12, 0.5, None, torch.float32),
        (MIN_COMPILED + 9000, 150, 0.0, 0.25, torch.float64),  # ties: breakpoints with multiplicities
        (2 * MIN_COMPILED, 700, 1.0, None, torch.float64),
    ],
)
def test_compiled_matches_eager(size, num_pos, delta, round_to, dtype):
    logits, targets = _problem(size + num_pos, size, num_pos, round_to, dtype)
    eager = _run(logits, targets, delta, False)
    compiled = _run(logits, targets, delta, True)
    for name, (values, grads) in eager.items():
        got_values, got_grads = compiled[name]
        for a, b in zip(got_values, values):
            assert_close(a, b, f"{name} value")
        for a, b in zip(got_grads, grads):
            assert_close(a, b, f"{name} gradient")


@pytest.mark.parametrize("delta", [0.0, 0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_compiled_matches_eager_without_ignored_entries_at_breakpoints(dtype, delta):
    """No ignored entries (the pass that does not read the targets), narrow scores (the
    float32 grid, entries rounded up) and negatives at the scores' own neighbours of every
    breakpoint s_i +- delta.  (H is continuous at the ends of the ramp, so a score placed
    on the wrong side of one would change the result by rounding only: the exact counts of
    the float32 grid are checked in test_loss_passes.)"""
    gen = torch.Generator().manual_seed(11)
    size, num_pos = MIN_COMPILED + 3000, 40
    logits = (torch.randn(size, generator=gen, dtype=torch.float64) * 2).to(dtype)
    targets = torch.zeros(size, dtype=dtype)
    targets[:num_pos] = (torch.rand(num_pos, generator=gen) * 0.9 + 0.1).to(dtype)
    points = torch.cat((logits[:num_pos].double() - delta, logits[:num_pos].double() + delta)).to(dtype)
    up = torch.tensor(torch.inf, dtype=dtype)
    near = torch.cat((points, torch.nextafter(points, up), torch.nextafter(points, -up))).repeat(20)
    logits[num_pos:num_pos + near.numel()] = near
    eager = _run(logits, targets, delta, False)
    compiled = _run(logits, targets, delta, True)
    for name, (values, grads) in eager.items():
        got_values, got_grads = compiled[name]
        for a, b in zip(got_values, values):
            assert_close(a, b, f"{name} value")
        for a, b in zip(got_grads, grads):
            assert_close(a, b, f"{name} gradient")


@pytest.mark.parametrize("ignore", [0.0, 0.05])
def test_compiled_search_pass_matches_eager(monkeypatch, ignore):
    """The forward pass off the CPU (``searchsorted`` fused into the pass, no grid), run
    here on the CPU: the eager values and gradients, with and without ignored entries."""
    monkeypatch.setattr(passes, "_grid_lookup", lambda device: False)
    gen = torch.Generator().manual_seed(4)
    logits, targets = random_problem(gen, MIN_COMPILED + 2000, 60 / MIN_COMPILED, ignore, None)
    logits = logits.float()
    for delta in (0.0, 0.5):
        eager = _run(logits, targets.float(), delta, False)
        compiled = _run(logits, targets.float(), delta, True)
        for name, (values, grads) in eager.items():
            got_values, got_grads = compiled[name]
            for a, b in zip(got_values, values):
                assert_close(a, b, f"{name} value")
            for a, b in zip(got_grads, grads):
                assert_close(a, b, f"{name} gradient")


def test_no_recompiles_over_varying_sizes():
    """After one call per variant, other M and P reuse the compiled graphs."""
    for size, num_pos in [(MIN_COMPILED + 500, 20), (MIN_COMPILED + 500, 20)]:
        logits, targets = _problem(1, size, num_pos, dtype=torch.float32)
        _run(logits, targets, 0.5, True)
    before = dict(dynamo_counters["stats"])
    for seed, (size, num_pos) in enumerate([(MIN_COMPILED + 7000, 35), (3 * MIN_COMPILED, 400), (MIN_COMPILED, 9)]):
        logits, targets = _problem(seed, size, num_pos, dtype=torch.float32)
        _run(logits, targets, 0.5, True)
    after = dict(dynamo_counters["stats"])
    assert after.get("unique_graphs", 0) == before.get("unique_graphs", 0), (before, after)
    assert after["calls_captured"] == before["calls_captured"], (before, after)
