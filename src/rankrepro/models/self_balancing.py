"""aLRP Loss's self-balancing of the localisation loss inside an mmdet head, and its hook."""
from __future__ import annotations

from torch import Tensor

from mmengine.hooks import Hook
from mmdet.registry import HOOKS

from ..losses import SelfBalancingWeight


class SelfBalancedLocalisation:
    """Mixin for heads trained with aLRP Loss: owns a :class:`SelfBalancingWeight`.

    The weight's period is one epoch of the run, set by :class:`ALRPSelfBalancingHook`
    from the training dataloader.  The official mmdet heads hard-code a number of
    iterations (3665 in the aLRPLoss repository's heads, 7330 in the aLRP branches of the
    RankSortLoss repository's ATSS / PAA heads); the AP-Loss-based aLRP code updates the
    weight at the end of every epoch.  Its state
    is part of the head's ``state_dict`` (``get_extra_state``), so resuming continues the
    current period.
    """

    def init_self_balancing(self, initial: float | None) -> None:
        self.sb_initial = initial
        self.sb_weight: SelfBalancingWeight | None = None

    def set_self_balancing_period(self, iterations_per_epoch: int) -> None:
        if self.sb_initial is not None:
            self.sb_weight = SelfBalancingWeight(iterations_per_epoch, 1, self.sb_initial)

    def self_balance(self, cls_loss: Tensor, loc_loss: Tensor) -> Tensor:
        if self.sb_weight is None:
            raise RuntimeError(
                f"{type(self).__name__} with aLRP Loss needs its self-balancing period: add "
                "dict(type='ALRPSelfBalancingHook') to custom_hooks (or call set_self_balancing_period)"
            )
        weight = self.sb_weight.update(float(cls_loss.detach()), float(loc_loss.detach()))
        return loc_loss * weight

    def get_extra_state(self):
        return None if self.sb_weight is None else self.sb_weight.state_dict()

    def set_extra_state(self, state) -> None:
        if state is not None:
            self.sb_weight = SelfBalancingWeight(1, 1)
            self.sb_weight.load_state_dict(state)


@HOOKS.register_module()
class ALRPSelfBalancingHook(Hook):
    """Sets the self-balancing period of every aLRP head to one epoch of the training run.

    One epoch is ``len(runner.train_dataloader)`` iterations: ceil(dataset size /
    (images per GPU x GPUs)); the official 3665 and 7330 are that for COCO's 117,266
    training images at 32 and 16 images per batch.
    """

    priority = "NORMAL"

    def before_train(self, runner) -> None:
        iterations = len(runner.train_dataloader)
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        for module in model.modules():
            if isinstance(module, SelfBalancedLocalisation) and module.sb_weight is None:
                module.set_self_balancing_period(iterations)
