"""mmengine extensions of the ``rankrepro`` runner: atomic checkpoints, resuming from the newest
complete checkpoint, strict checkpoint loading with a config check (see
:mod:`rankrepro.engine.checkpoints`).  Importing this package registers the hooks in
mmengine's ``HOOKS`` registry."""
from .checkpoints import (
    AtomicCheckpointHook,
    CheckpointConfigCheckHook,
    StrictLoadRunner,
    checkpoint_problem,
    config_differences,
    describe_differences,
    find_resume_checkpoint,
)

__all__ = [
    "AtomicCheckpointHook",
    "CheckpointConfigCheckHook",
    "StrictLoadRunner",
    "checkpoint_problem",
    "config_differences",
    "describe_differences",
    "find_resume_checkpoint",
]
