"""Checkpoints that survive a kill, resuming from the newest complete one, strict loading for test.

* :class:`AtomicCheckpointHook` (mmengine's ``CheckpointHook`` with another save path):
  each checkpoint is written to a temporary name beside its final one, flushed to disk and
  renamed; ``last_checkpoint`` is then replaced the same way, and only after that are the
  checkpoints beyond ``max_keep_ckpts`` deleted.  mmengine deletes the oldest checkpoint
  *before* writing the new one and writes it in place, so a kill during a save can leave no
  usable checkpoint at all (with ``max_keep_ckpts=1``) and a truncated file named as the
  latest.  Here a kill at any moment leaves every checkpoint that was complete before the
  save.
* :func:`find_resume_checkpoint`: the newest *complete* checkpoint of a work folder (the one
  ``last_checkpoint`` names or a newer complete one, then older ones), skipping truncated or
  corrupt files; an error when the folder has checkpoints but none is usable.
* :class:`CheckpointConfigCheckHook`: compares the model config stored in a loaded
  checkpoint (mmengine keeps the training run's config in ``meta['cfg']``) with the current
  one and records the differences.
* :class:`StrictLoadRunner`: mmengine's Runner whose ``load_checkpoint`` is strict (missing,
  unexpected or size-mismatched keys raise :class:`~rankrepro.errors.RankReproError`).
"""
from __future__ import annotations

import os
import re
import signal
import zipfile
from pathlib import Path

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS
from mmengine.runner import Runner

from ..atomic import replace_durably, write_atomic
from ..errors import RankReproError

#: Test seam: with ``RANKREPRO_TEST_KILL_DURING_CHECKPOINT=<step>`` in the environment, the
#: process kills itself with SIGKILL while saving the checkpoint of that step, after half of
#: the file is on disk (what a kill during ``torch.save`` leaves).  For the resume tests only.
KILL_SEAM_ENV = "RANKREPRO_TEST_KILL_DURING_CHECKPOINT"

_TMP_SUFFIX = ".tmp"


def _tmp_name(filename: str) -> str:
    return f".{filename}.{os.getpid()}{_TMP_SUFFIX}"


def checkpoint_problem(path: str | os.PathLike) -> str | None:
    """``None`` if ``path`` is a complete checkpoint file, else what is wrong with it.

    ``torch.save`` writes a zip archive with a CRC-32 per entry, written last the central
    directory: a truncated file has no readable directory and a damaged one fails a CRC.
    Reads the whole file (no unpickling).
    """
    path = Path(path)
    if not path.exists():
        return "is missing"
    if not path.is_file():
        return "is not a file"
    if path.stat().st_size == 0:
        return "is empty"
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            names = archive.namelist()
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        return f"is incomplete or corrupt (not a readable torch checkpoint: {err})"
    if damaged is not None:
        return f"is corrupt (checksum mismatch in {damaged})"
    if not any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
        return "is not a torch checkpoint (no data.pkl in the archive)"
    return None


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's :class:`~mmengine.hooks.CheckpointHook` (same arguments and schedule) whose
    checkpoints are written atomically and whose old checkpoints are deleted only after the new
    one is complete.  Checkpoints outside the local file system fall back to mmengine's save."""

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and self._local():
            # Saves interrupted by a kill leave temporary files; none of them is usable.
            pattern = "." + self.filename_tmpl.format("*") + ".*" + _TMP_SUFFIX
            for stale in sorted(Path(self.out_dir).glob(pattern)):
                runner.logger.warning(f"removing {stale.name}, left by an interrupted checkpoint save")
                stale.unlink()

    def _local(self) -> bool:
        return self.file_client_args is None and isinstance(self.file_backend, LocalBackend)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        dropped = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            # The same bookkeeping as mmengine (the checkpoint records the list it leaves),
            # but the dropped files are deleted after the new checkpoint is complete.
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                dropped.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info("keep_ckpt_ids", list(self.keep_ckpt_ids))

        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info("last_ckpt", self.last_ckpt)
        tmp_name = _tmp_name(filename)
        runner.save_checkpoint(
            self.out_dir,
            tmp_name,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args,
        )
        if not is_main_process():
            return
        tmp = Path(self.out_dir) / tmp_name
        _kill_seam(step, tmp)
        replace_durably(tmp, self.last_ckpt)
        write_atomic(Path(runner.work_dir) / "last_checkpoint", str(self.last_ckpt).encode(), durable=True)
        for old in dropped:
            path = Path(self.out_dir) / self.filename_tmpl.format(old)
            if path.is_file() and str(path) != str(self.last_ckpt):
                path.unlink()


def _kill_seam(step: int, tmp: Path) -> None:
    target = os.environ.get(KILL_SEAM_ENV)
    if target is not None and int(target) == step:
        size = tmp.stat().st_size
        with open(tmp, "r+b") as f:
            f.truncate(size // 2)
        os.kill(os.getpid(), signal.SIGKILL)


def _step_pattern(filename_tmpl: str) -> re.Pattern:
    head, _, tail = filename_tmpl.partition("{}")
    return re.compile("^" + re.escape(head) + r"(\d+)" + re.escape(tail) + "$")


def find_resume_checkpoint(work_dir: str | os.PathLike, filename_tmpl: str = "iter_{}.pth"):
    """The checkpoint to resume a run in ``work_dir`` from, and the problems met on the way.

    Candidates are the file that ``last_checkpoint`` names and every ``filename_tmpl`` file of
    its folder and of ``work_dir``, newest (highest step) first; the first complete one
    (:func:`checkpoint_problem`) is returned with a list of ``"<file> <problem>"`` for the
    newer ones skipped.  Returns ``(None, [])`` when the folder has no checkpoint and no
    ``last_checkpoint`` (a fresh run).  Raises :class:`RankReproError` when it has some but
    none is complete: resuming must never silently restart from iteration 0.
    """
    work_dir = Path(work_dir).resolve()
    pattern = _step_pattern(filename_tmpl)
    recorded = None
    record = work_dir / "last_checkpoint"
    if record.is_file():
        text = record.read_text(encoding="utf-8", errors="replace").strip()
        recorded = Path(text).resolve() if text else None
    folders = [work_dir] + ([recorded.parent] if recorded is not None and recorded.parent != work_dir else [])
    steps: dict[Path, int] = {}
    for folder in folders:
        if folder.is_dir():
            for path in folder.iterdir():
                match = pattern.match(path.name)
                if match and path.is_file():
                    steps[path] = int(match.group(1))
    if recorded is not None and recorded not in steps:
        match = pattern.match(recorded.name)
        steps[recorded] = int(match.group(1)) if match else -1
    if not steps and not record.exists():
        return None, []
    ordered = sorted(steps, key=lambda p: (steps[p], p == recorded), reverse=True)
    skipped = []
    for path in ordered:
        problem = checkpoint_problem(path)
        if problem is None:
            return path, skipped
        skipped.append(f"{path} {problem}")
    found = "; ".join(skipped) if skipped else "last_checkpoint is empty"
    raise RankReproError(
        f"--resume: {work_dir} has no complete checkpoint to resume from ({found}); "
        "remove the work folder (or use another --work-dir) to start from iteration 0"
    )


def _plain(value):
    if isinstance(value, dict) or hasattr(value, "to_dict"):
        return {str(k): _plain(v) for k, v in dict(value).items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def config_differences(stored, current, prefix: str = "model") -> list[dict]:
    """The leaves where two (nested dict / list) configs differ: ``[{key, checkpoint, config}]``
    with ``None`` for a key missing on one side."""
    stored, current = _plain(stored), _plain(current)
    out: list[dict] = []

    def walk(a, b, key):
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{key}.{k}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{key}[{i}]")
        elif a != b:
            out.append({"key": key, "checkpoint": a, "config": b})

    walk(stored, current, prefix)
    return out


@HOOKS.register_module()
class CheckpointConfigCheckHook(Hook):
    """After a checkpoint is loaded (``after_load_checkpoint``, before its weights go into the
    model), compares the ``model`` section of the config stored in it (``meta['cfg']``, written
    by mmengine when training) with the runner's, and keeps the result in :attr:`report`:
    ``{stored, differences, iter, epoch}`` (``stored`` False for a checkpoint without a config).
    Only the model section is compared (architecture, losses, assigners, test-time settings):
    schedules, data paths and run-time settings of the training run legitimately differ.

    ``strict=True``: a checkpoint without a stored config or with differences raises
    :class:`RankReproError` before its weights are loaded."""

    priority = "VERY_HIGH"

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.report: dict | None = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get("meta", {}) if isinstance(checkpoint, dict) else {}
        report = {"stored": False, "differences": [], "iter": meta.get("iter"), "epoch": meta.get("epoch")}
        text = meta.get("cfg")
        if isinstance(text, str):
            from mmengine.config import Config

            try:
                stored = Config.fromstring(text, file_format=".py")
            except Exception as err:  # an unreadable stored config is reported, not fatal
                report["unreadable"] = f"{type(err).__name__}: {err}"
            else:
                report["stored"] = True
                report["differences"] = config_differences(stored.get("model"), runner.cfg.get("model"))
        self.report = report
        if self.strict and not report["stored"]:
            raise RankReproError(f"--strict-config: the checkpoint stores no readable config to compare with {runner.cfg.filename}")
        if self.strict and report["differences"]:
            raise RankReproError(
                f"--strict-config: the checkpoint does not match config {runner.cfg.filename}; "
                + describe_differences(report["differences"])
            )


class StrictLoadRunner(Runner):
    """mmengine's Runner, but loading a checkpoint (``load_from``, ``load_checkpoint``) is strict:
    missing, unexpected or size-mismatched keys raise :class:`RankReproError` with mmengine's
    list of them, and a missing or damaged file is named before torch tries to read it."""

    def load_checkpoint(self, filename, map_location="cpu", strict=True, revise_keys=[(r"^module.", "")]):
        problem = checkpoint_problem(filename)
        if problem is not None:
            raise RankReproError(f"checkpoint {filename} {problem}")
        try:
            return super().load_checkpoint(filename, map_location=map_location, strict=strict, revise_keys=revise_keys)
        except RuntimeError as err:
            if "do not match exactly" not in str(err):
                raise
            raise RankReproError(
                f"checkpoint {filename} does not fit the model of config {self.cfg.filename}:\n"
                + _shorten(str(err))
                + _differences_note(self)
            ) from None


def _shorten(message: str, width: int = 400, lines: int = 12) -> str:
    rows = [r if len(r) <= width else r[:width] + f" ... ({len(r) - width} more characters)" for r in message.strip().splitlines() if r.strip()]
    if len(rows) > lines:
        rows = rows[:lines] + [f"... ({len(rows) - lines} more lines)"]
    return "\n".join("  " + r for r in rows)


def _differences_note(runner) -> str:
    for hook in runner.hooks:
        if isinstance(hook, CheckpointConfigCheckHook) and hook.report and hook.report["differences"]:
            return "\n" + describe_differences(hook.report["differences"])
    return ""


def describe_differences(differences: list[dict], limit: int = 5) -> str:
    """One line per difference (at most ``limit``; module types first), for messages."""
    shown = sorted(differences, key=lambda d: not d["key"].endswith(".type"))[:limit]
    parts = [f"  {d['key']}: {d['checkpoint']!r} in the checkpoint, {d['config']!r} in the config" for d in shown]
    if len(differences) > limit:
        parts.append(f"  ... and {len(differences) - limit} more")
    return "the checkpoint was trained with another model config:\n" + "\n".join(parts)
