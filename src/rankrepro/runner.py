"""Train and test mmdet configs with mmengine's Runner (``rankrepro train`` / ``rankrepro test``).

* Checkpoints are written atomically (:class:`rankrepro.engine.AtomicCheckpointHook` replaces
  mmengine's ``CheckpointHook`` in every config), so a run killed at any moment keeps every
  checkpoint that was complete.
* ``train(..., resume=True)`` continues from the newest complete checkpoint of the work
  folder (falling back past truncated or corrupt ones); a folder without any checkpoint
  starts from iteration 0; a folder whose checkpoints are all unusable is an error.
* ``test`` loads the checkpoint strictly and reports where the model config stored in the
  checkpoint differs from the given config.
* ``data_root``: with ``smoke``, the synthetic dataset; without, the folder that replaces
  mmdet's ``data/`` in paper-scale configs (:func:`relocate_data`).
* ``weights_dir``: load the pretrained checkpoints the config names (``torchvision://``,
  ``open-mmlab://``, URLs) from this folder instead of the internet (:func:`use_weights_dir`).

Bad input (a missing config, checkpoint or dataset, an unusable work folder) raises
:class:`rankrepro.errors.RankReproError`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RankReproError
from .evaluation.report import write_json_atomic

#: An environment variable that each distributed launcher sets (torchrun, srun, mpirun).
_LAUNCHER_ENV = {"pytorch": "LOCAL_RANK", "slurm": "SLURM_PROCID", "mpi": "OMPI_COMM_WORLD_RANK"}

#: Differences between the checkpoint's and the given model config kept in the metrics JSON.
MAX_REPORTED_DIFFERENCES = 50


def _prepare_environment() -> None:
    # torch >= 2.6 loads checkpoints with weights_only=True by default, which rejects the
    # metadata mmengine stores in them (resume, load_from, test); mmengine 0.10.7 predates it.
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")


def _read_config(config):
    from mmengine.config import Config

    path = Path(config)
    if not path.is_file():
        raise RankReproError(f"config {config} does not exist" if not path.exists() else f"config {config} is not a file")
    try:
        return Config.fromfile(str(path))
    except (SyntaxError, OSError, KeyError, ValueError) as err:
        raise RankReproError(f"config {config} cannot be read: {type(err).__name__}: {err}") from None


def load_config(
    config, work_dir, smoke: bool = False, data_root=None, max_iters: int = 300, cfg_options=None, launcher: str = "none",
    weights_dir=None,
):
    from .smoke import smoke_config

    if Path(work_dir).exists() and not Path(work_dir).is_dir():
        raise RankReproError(f"work dir {work_dir} exists and is not a folder")
    needs = _LAUNCHER_ENV.get(launcher)
    if needs is not None and needs not in os.environ:
        raise RankReproError(f"--launcher {launcher} needs the environment of its launcher ({needs} is not set)")
    cfg = _read_config(config)
    if smoke:
        if data_root is None:
            raise RankReproError("--smoke needs --data-root (a dataset made by `rankrepro make-data`)")
        from .data.synthetic import verify_synthetic_coco

        verify_synthetic_coco(data_root)
        cfg = smoke_config(cfg, data_root, max_iters=max_iters)
    elif data_root is not None:
        relocate_data(cfg, data_root, config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if weights_dir is not None:
        use_weights_dir(cfg, weights_dir, config)
    _use_atomic_checkpoints(cfg)
    cfg.work_dir = str(work_dir)
    cfg.launcher = launcher
    return cfg


def relocate_data(cfg, data_root, config="the config") -> None:
    """Paper-scale configs read their datasets under mmdet's ``data/`` (``data/coco/``,
    ``data/lvis_v1/``, ``data/cityscapes/``): every path of ``cfg`` that starts with ``data/``
    is moved under ``data_root`` instead (dataset roots, evaluators' annotation files).  A
    config without such paths is an error (``--data-root`` is never silently ignored)."""
    if not Path(data_root).is_dir():
        raise RankReproError(f"--data-root {data_root} is not a folder")
    root = str(data_root).rstrip("/") + "/"
    moved = []

    def walk(node, keys, prefix):
        for k in keys:
            value = node[k]
            if isinstance(value, str) and value.startswith(_MMDET_DATA):
                node[k] = root + value[len(_MMDET_DATA):]
                moved.append(f"{prefix}{k}")
            elif isinstance(value, dict):
                walk(value, list(value.keys()), f"{prefix}{k}.")
            elif isinstance(value, list):
                walk(value, range(len(value)), f"{prefix}{k}.")

    walk(cfg, list(cfg.keys()), "")
    if not moved:
        raise RankReproError(f"--data-root: {config} reads no dataset under {_MMDET_DATA} to move to {data_root}")


_MMDET_DATA = "data/"


def checkpoint_references(cfg) -> list[tuple]:
    """Every pretrained checkpoint ``cfg`` names: ``(node, key, value)`` for each
    ``init_cfg.checkpoint`` anywhere in it (a dict or a list of dicts) and for ``load_from``."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            init = node.get("init_cfg")
            for item in [init] if isinstance(init, dict) else (init if isinstance(init, list) else []):
                if isinstance(item, dict) and isinstance(item.get("checkpoint"), str) and item["checkpoint"]:
                    found.append((item, "checkpoint", item["checkpoint"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(cfg._cfg_dict if hasattr(cfg, "_cfg_dict") else cfg)
    if isinstance(cfg.get("load_from"), str) and cfg.get("load_from"):
        found.append((cfg, "load_from", cfg.get("load_from")))
    return found


def use_weights_dir(cfg, weights_dir, config="the config", sources=None) -> dict:
    """Load every pretrained checkpoint ``cfg`` names (``torchvision://...``,
    ``open-mmlab://...``, URLs; see :func:`checkpoint_references`) from ``weights_dir``
    instead: each is replaced by ``weights_dir/<file name>`` of its entry in the weights list
    of ``configs/datasets.yaml`` (``sources``), which is where the workflow's
    ``download_weights`` rule puts it.  A name missing from the list, or a file missing from
    ``weights_dir``, is an error naming it.  Returns ``{name: path}``."""
    from .data.sources import load_sources

    sources = sources or load_sources()
    names = sources.weight_names()
    replaced, problems = {}, []
    for node, key, value in checkpoint_references(cfg):
        if Path(value).is_file():  # a local checkpoint (e.g. the work folder's own): kept
            continue
        name = names.get(value)
        if name is None:
            problems.append(f"{value} (named by {config}) is not in the weights list of {sources.path}")
            continue
        path = Path(weights_dir) / name
        if not path.is_file():
            problems.append(f"{path}: missing (the weights of {value}); fetch it with the workflow's download_weights "
                            f"rule or `python -m rankrepro.data.download weights --data-root <data_root> {name}`")
            continue
        node[key] = str(path)
        replaced[value] = str(path)
    if problems:
        raise RankReproError("--weights-dir " + str(weights_dir) + ": " + "; ".join(problems))
    return replaced


def _use_atomic_checkpoints(cfg) -> None:
    """mmengine's CheckpointHook -> AtomicCheckpointHook (same arguments), importable from the
    dumped config through ``custom_imports``."""
    hooks = cfg.get("default_hooks")
    hook = hooks.get("checkpoint") if hooks is not None else None
    if hook is None or hook.get("type") not in ("CheckpointHook", "mmengine.CheckpointHook", "AtomicCheckpointHook"):
        return
    hook.type = "AtomicCheckpointHook"
    imports = cfg.get("custom_imports")
    if imports is None:
        cfg.custom_imports = dict(imports=["rankrepro.engine"], allow_failed_imports=False)
    elif "rankrepro.engine" not in imports.get("imports", []):
        imports.imports = list(imports.get("imports", [])) + ["rankrepro.engine"]


def _checkpoint_filename_tmpl(cfg) -> str:
    hook = (cfg.get("default_hooks") or {}).get("checkpoint") or {}
    if hook.get("filename_tmpl"):
        return hook["filename_tmpl"]
    return "epoch_{}.pth" if hook.get("by_epoch", True) else "iter_{}.pth"


def train(config, work_dir, resume: bool = False, **kwargs) -> None:
    """Train ``config`` into ``work_dir``.

    ``resume``: continue from the newest complete checkpoint in ``work_dir`` (newer truncated
    or corrupt ones are skipped with a warning); without any checkpoint there, start from
    iteration 0; with checkpoints of which none is usable, raise :class:`RankReproError`.
    """
    _prepare_environment()
    from mmengine.runner import Runner

    from .engine import StrictLoadRunner, find_resume_checkpoint

    cfg = load_config(config, work_dir, **kwargs)
    notes = []
    if resume:
        path, skipped = find_resume_checkpoint(work_dir, _checkpoint_filename_tmpl(cfg))
        notes += [f"--resume: skipping {problem}" for problem in skipped]
        if path is None:
            cfg.resume = False  # mmengine's own search would also start fresh; say so
            notes.append(f"--resume: no checkpoint in {work_dir}; starting from iteration 0")
        else:
            cfg.resume = True
            cfg.load_from = str(path)  # mmengine resumes from the given checkpoint
            notes.append(f"--resume: resuming from {path}")
    else:
        cfg.resume = False
    # Resuming loads the work folder's own checkpoint: strictly, as a mismatch means another model.
    runner = (StrictLoadRunner if cfg.resume else Runner).from_cfg(cfg)
    for note in notes:
        (runner.logger.warning if "skipping" in note else runner.logger.info)(note)
    runner.train()


@dataclass
class TestResult:
    """What ``rankrepro test`` found: the metrics and how the checkpoint fits the config."""

    metrics: dict
    checkpoint_config: dict = field(default_factory=dict)


def test(config, checkpoint, work_dir, out=None, **kwargs) -> dict:
    """Evaluate ``checkpoint`` (loaded strictly); writes the metrics JSON to ``out``.

    Returns the metrics; see :func:`test_checkpoint` for the checkpoint/config report.
    """
    return test_checkpoint(config, checkpoint, work_dir, out=out, **kwargs).metrics


def test_checkpoint(config, checkpoint, work_dir, out=None, strict_config: bool = False, **kwargs) -> TestResult:
    """Evaluate ``checkpoint`` with ``config``.

    The checkpoint is loaded strictly: missing, unexpected or size-mismatched parameters
    raise :class:`RankReproError` (nothing is evaluated, no metrics file is written).  The
    model config stored in the checkpoint is compared with ``config``'s; differences are
    logged, returned in ``checkpoint_config`` and written to ``out`` (with
    ``strict_config`` they are an error instead).  ``out`` holds ``config``, ``checkpoint``,
    ``checkpoint_config_differs`` (true / false; null for a checkpoint without a stored
    config), ``checkpoint_config`` (``stored``, ``matches``, the checkpoint's ``iter`` and
    ``epoch``, ``num_differences`` and up to 50 ``differences``: ``{key, checkpoint,
    config}``), ``fps`` and ``test_images`` (:class:`rankrepro.engine.speed.TestSpeedHook`) and
    ``metrics``.
    """
    _prepare_environment()
    from .engine import CheckpointConfigCheckHook, StrictLoadRunner, checkpoint_problem, describe_differences
    from .engine.speed import TestSpeedHook

    problem = checkpoint_problem(checkpoint)
    if problem is not None:
        raise RankReproError(f"checkpoint {checkpoint} {problem}")
    if out is not None:
        _check_output(out, inputs=(config, checkpoint))
    cfg = load_config(config, work_dir, **kwargs)
    cfg.load_from = str(checkpoint)
    cfg.resume = False
    prefix = str(Path(work_dir) / "test")
    evaluator = cfg.test_evaluator
    if isinstance(evaluator, dict) and evaluator.get("type") in ("CocoOLRPMetric", "LVISOLRPMetric"):
        evaluator.outfile_prefix = prefix
    runner = StrictLoadRunner.from_cfg(cfg)
    check = CheckpointConfigCheckHook(strict=strict_config)
    runner.register_hook(check)
    speed = TestSpeedHook()
    runner.register_hook(speed)
    metrics = runner.test()
    report = _summarise(check.report)
    if report["differences"]:
        runner.logger.warning(f"checkpoint {checkpoint}: {describe_differences(report['differences'])}")
    if out is not None:
        differs = None if not report["stored"] else not report["matches"]
        write_json_atomic(
            {"config": str(config), "checkpoint": str(checkpoint), "checkpoint_config_differs": differs,
             "checkpoint_config": report, **speed.summary(), "metrics": dict(metrics)},
            out,
        )
    return TestResult(dict(metrics), report)


def _summarise(report: dict | None) -> dict:
    """The metrics JSON's ``checkpoint_config``: ``{stored, matches, iter, epoch, differences}``."""
    if report is None:  # the runner did not load (cannot happen with load_from set)
        raise RuntimeError("the checkpoint was not loaded")
    differences = report["differences"]
    summary = {
        "stored": report["stored"],
        "matches": report["stored"] and not differences,
        "iter": report["iter"],
        "epoch": report["epoch"],
        "num_differences": len(differences),
        "differences": [_json_safe(d) for d in differences[:MAX_REPORTED_DIFFERENCES]],
    }
    if "unreadable" in report:
        summary["unreadable"] = report["unreadable"]
    return summary


def _json_safe(difference: dict) -> dict:
    def safe(value):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, (list, dict)):
            try:
                import json

                json.dumps(value)
                return value
            except (TypeError, ValueError):
                pass
        return repr(value)

    return {k: safe(v) for k, v in difference.items()}


def _check_output(out, inputs) -> None:
    """Refuse an ``--out`` that names an input or a folder, or whose folder cannot be written,
    before anything is evaluated."""
    target = Path(out)
    for item in inputs:
        if Path(item).exists() and target.exists() and os.path.samefile(item, target):
            raise RankReproError(f"--out {out} is an input ({item}); choose another file")
    if target.is_dir():
        raise RankReproError(f"--out {out} is a folder")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise RankReproError(f"--out {out}: cannot write into {parent}")
