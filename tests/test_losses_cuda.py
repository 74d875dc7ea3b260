"""The losses on a CUDA device agree with the CPU (skipped without a GPU)."""
import pytest
import torch

from loss_cases import assert_close, binary, random_problem
from rankrepro.losses import alrp_loss, ap_loss, bucketed_ap_loss, bucketed_rank_sort_loss, rank_sort_loss

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16])
def test_cuda_matches_cpu(dtype):
    gen = torch.Generator().manual_seed(4)
    logits, targets = random_problem(gen, 20000, pos_frac=0.01)
    logits = logits.to(dtype)
    labels = binary(targets)
    loc = torch.rand(int((labels > 0).sum()), dtype=torch.float64)
    runs = {}
    for device in ("cpu", "cuda"):
        x = logits.to(device).requires_grad_()
        t, lab, l = targets.to(device), labels.to(device), loc.to(device)
        terms = [
            *rank_sort_loss(x, t),
            *bucketed_rank_sort_loss(x, t),
            ap_loss(x, lab),
            bucketed_ap_loss(x, lab),
            alrp_loss(x, lab, l)[0],
        ]
        assert all(term.device.type == device for term in terms)
        grads = [torch.autograd.grad(term, x, retain_graph=True)[0].double().cpu() for term in terms]
        runs[device] = ([term.item() for term in terms], grads)
    for a, b in zip(runs["cpu"][0], runs["cuda"][0]):
        assert_close(a, b, "value")
    for a, b in zip(runs["cpu"][1], runs["cuda"][1]):
        assert_close(a, b, "gradient")


@pytest.mark.parametrize("num_pos, delta", [(40, 0.5), (1500, 0.0)])
def test_compiled_passes_on_cuda_match_eager_cpu(num_pos, delta):
    """The compiled passes over M (Triton on CUDA) give the eager CPU values and gradients."""
    from rankrepro.losses import compiled_enabled, set_compiled
    from rankrepro.losses.passes import MIN_COMPILED

    gen = torch.Generator().manual_seed(11)
    size = 3 * MIN_COMPILED
    logits, targets = random_problem(gen, size, pos_frac=num_pos / size)
    runs = {}
    initial = compiled_enabled()
    try:
        for device, compiled in (("cpu", False), ("cuda", True)):
            set_compiled(compiled)
            x = logits.to(device).requires_grad_()
            terms = [*rank_sort_loss(x, targets.to(device), delta), *bucketed_rank_sort_loss(x, targets.to(device), delta)]
            grads = [torch.autograd.grad(term, x, retain_graph=True)[0].double().cpu() for term in terms]
            runs[device] = ([term.item() for term in terms], grads)
    finally:
        set_compiled(initial)
    for a, b in zip(runs["cpu"][0], runs["cuda"][0]):
        assert_close(a, b, "compiled value")
    for a, b in zip(runs["cpu"][1], runs["cuda"][1]):
        assert_close(a, b, "compiled gradient")
