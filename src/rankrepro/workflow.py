"""What the Snakemake workflow computes: commands, resources, records (``python -m rankrepro.workflow``).

The rules under ``workflow/rules/`` stay declarative; this module builds their commands
from the registry entry of an experiment and writes the records they declare as outputs:

* ``train-record``: the training record (``work_dirs/<scale>/<exp>/train.json``), written
  last, after training succeeded: iterations, mean seconds per iteration (mmengine's
  ``IterTimerHook`` times, read from ``vis_data/scalars.json`` of every run of the work dir,
  resumed ones included), the final checkpoint, the batch (published GPUs x images, the
  GPUs used and the gradient accumulation that keeps the published total batch) and
  provenance (git commit, config hash, package versions).
* ``metrics-record``: ``results/<scale>/metrics/<exp>.json``: the test metrics under the
  names of the published tables (``AP``, ``AP50``, ..., ``oLRP``, ``mask_AP``, ``APr``, ...;
  fractions in [0, 1]), test images per second, and the training record.
* ``verify-dataset``: at paper scale, that the files a dataset's configs read exist
  under ``data_root`` and are not empty.

**The published total batch with fewer GPUs** is kept by gradient accumulation
(mmengine's ``optim_wrapper.accumulative_counts``): the optimiser then sees the paper's
batch and learning rate at every step, which linear LR scaling (``auto_scale_lr``) would
only approximate (it changes the number of optimiser steps and the noise of each). The
published GPU count must be a multiple of the GPUs used.  Iteration-based warm-up counts
data batches, so it covers 1/k of the published warm-up in optimiser steps.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

from .atomic import write_atomic, write_json
from .errors import RankReproError
from .registry import REPO_ROOT, Experiment, Registry, RegistryError

# mmdet / rankrepro metric keys -> the published tables' vocabulary (configs/published/metrics.csv)
_AP_SUFFIXES = {"mAP": "AP", "mAP_50": "AP50", "mAP_75": "AP75", "mAP_s": "APs", "mAP_m": "APm", "mAP_l": "APl"}
_LVIS_SUFFIXES = {"AP": "AP", "AP50": "AP50", "AP75": "AP75", "APs": "APs", "APm": "APm", "APl": "APl",
                  "APr": "APr", "APc": "APc", "APf": "APf"}
_LRP_SUFFIXES = ("oLRP", "oLRP_Loc", "oLRP_FP", "oLRP_FN")

# What each dataset's configs read under data_root (mmdet's base dataset configs).
DATASET_FILES = {
    "coco": ["coco/annotations/instances_train2017.json", "coco/annotations/instances_val2017.json",
             "coco/train2017/", "coco/val2017/"],
    "lvis": ["lvis_v1/annotations/lvis_v1_train.json", "lvis_v1/annotations/lvis_v1_val.json",
             "lvis_v1/train2017/", "lvis_v1/val2017/"],
    "cityscapes": ["cityscapes/annotations/instancesonly_filtered_gtFine_train.json",
                   "cityscapes/annotations/instancesonly_filtered_gtFine_val.json",
                   "cityscapes/leftImg8bit/train/", "cityscapes/leftImg8bit/val/", "cityscapes/gtFine/val/"],
    # COCO test-dev (mmdet's coco_detection.py test-dev comment): images and the image list
    "coco_test_dev": ["coco/annotations/image_info_test-dev2017.json", "coco/test2017/"],
}

# Paper-scale resources when a registry entry sets none (per GPU job; runtime in minutes).
DEFAULT_RESOURCES = {"paper": {"mem_mb": 64000, "runtime": 3 * 24 * 60}, "smoke": {"mem_mb": 4000, "runtime": 60}}
#: Paper scale: CPU threads per GPU (its data-loading workers; mmdet's configs use 2-4), for the
#: jobs' threads and the SLURM tasks' CPUs.
CPUS_PER_GPU = 4


class WorkflowInputError(RankReproError):
    """Bad workflow input: a missing data root or dataset file, an unusable GPU count."""


def check_data_root(root: str) -> str:
    if not root or not Path(root).is_dir():
        raise WorkflowInputError(f"data_root {root!r} is not a folder (paper scale reads coco/, lvis_v1/, cityscapes/ there)")
    return str(root)


def _config_files(path: Path, seen: list) -> None:
    """``path`` and, depth first, the project's own ``_base_`` files it inherits (``mmdet::``
    bases come from the pinned mmdet release, which the provenance records)."""
    import ast

    path = path.resolve()
    if path in seen:
        return
    seen.append(path)
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_base_" for t in node.targets):
            bases = ast.literal_eval(node.value)
            for base in [bases] if isinstance(bases, str) else bases:
                if "::" not in base:
                    _config_files(path.parent / base, seen)


@lru_cache(maxsize=None)
def config_hash(config: str) -> str:
    """A hash of what defines a config: its Python syntax tree and those of the project's
    ``_base_`` files, without comments, docstrings or formatting (so that editing a comment
    retrains nothing).  Milliseconds per config, without importing mmdet."""
    files: list = []
    _config_files(REPO_ROOT / config, files)
    return _ast_digest(files)


#: The code that writes the synthetic dataset (COCO, LVIS v1 and Cityscapes layouts); not the
#: paper-scale download code beside it, which changes no smoke run.
DATA_CODE = ("src/rankrepro/data/synthetic.py", "src/rankrepro/data/formats.py")
#: The code that defines what a training run computes (the losses, heads, the smoke variant
#: and its data); its syntax trees, without docstrings, enter every run key.
TRAINING_CODE = ("src/rankrepro/losses", "src/rankrepro/models", "src/rankrepro/smoke.py", *DATA_CODE)


def _ast_digest(paths) -> str:
    import ast

    digest = hashlib.sha256()
    for path in paths:
        tree = ast.parse(Path(path).read_text())
        for node in ast.walk(tree):  # drop docstrings (module, class, function)
            body = getattr(node, "body", None)
            if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        digest.update(str(Path(path).relative_to(REPO_ROOT)).encode())
        digest.update(ast.dump(tree).encode())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=None)
def code_hash(entries: tuple = TRAINING_CODE) -> str:
    """A hash of the syntax trees of ``entries`` (files or folders; by default the training
    code, :data:`TRAINING_CODE`), comments and docstrings left out: a changed loss or head
    retrains, an edited docstring does not."""
    files = []
    for entry in entries:
        path = REPO_ROOT / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return _ast_digest(files)


def run_key(exp: Experiment, scale: str, cfg: dict) -> str:
    """What defines a trained model: config, training code, scale, schedule and batch.  A
    work dir trained under another key is moved aside instead of resumed."""
    gpus = train_gpus(exp, scale, cfg)
    key = {"config": config_hash(exp.config), "code": code_hash(), "scale": scale,
           "smoke_iters": smoke_iters(exp, cfg) if scale == "smoke" else None,
           "gpus": gpus, "accumulative_counts": accumulation(exp, gpus) if scale == "paper" else None}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def prepare_work_dir(work_dir: str | Path, key: str) -> str | None:
    """Make ``work_dir`` safe to ``--resume`` in: when it holds a run of another key (or of
    unknown key: checkpoints without ``run_key``), move it aside to ``<dir>.stale-<time>``
    (never deleted) so training starts from iteration 0; then record ``key``.  Returns the
    folder it moved the old run to, if any."""
    work_dir = Path(work_dir)
    key_file = work_dir / "run_key"
    moved = None
    if work_dir.exists():
        old = key_file.read_text().strip() if key_file.is_file() else None
        has_run = any(work_dir.glob("*.pth")) or (work_dir / "last_checkpoint").exists()
        if old != key and (old is not None or has_run):
            moved = work_dir.with_name(f"{work_dir.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
            work_dir.rename(moved)
    work_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(key_file, (key + "\n").encode())
    return str(moved) if moved else None


def smoke_iters(exp: Experiment, cfg: dict) -> int:
    return int(exp.smoke_iters or cfg["smoke"]["iters"])


def train_gpus(exp: Experiment, scale: str, cfg: dict) -> int:
    if scale != "paper":
        return 0
    return int(cfg.get("gpus") or exp.gpus)


def accumulation(exp: Experiment, gpus: int) -> int:
    """Gradient-accumulation steps that keep the published total batch on ``gpus`` GPUs."""
    if gpus <= 0:
        return 1
    if gpus > exp.gpus or exp.gpus % gpus:
        raise WorkflowInputError(
            f"{exp.id}: published on {exp.gpus} GPUs x {exp.images_per_gpu} images; {gpus} GPUs cannot keep "
            f"that batch of {exp.batch_size} by accumulation (use a divisor of {exp.gpus})"
        )
    return exp.gpus // gpus


def test_threads(exp: Experiment, scale: str, cfg: dict) -> int:
    return CPUS_PER_GPU if scale == "paper" else int(cfg["smoke"]["threads"])  # one GPU's data loading


def train_threads(exp: Experiment, scale: str, cfg: dict) -> int:
    if scale == "paper":
        return CPUS_PER_GPU * train_gpus(exp, scale, cfg)
    return int(cfg["smoke"]["threads"])


def resource(exp: Experiment, scale: str, key: str) -> int:
    return int(exp.resources.get(key, DEFAULT_RESOURCES[scale][key]))


def python() -> str:
    """The Python the jobs run: this one, or ``RANKREPRO_PYTHON`` where the jobs run elsewhere
    (inside the image with ``--software-deployment-method apptainer``: ``/opt/venv/bin/python``)."""
    return os.environ.get("RANKREPRO_PYTHON") or sys.executable


def _cli(threads: int) -> str:
    env = f"OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} " if threads else ""
    return f"{env}{shlex.quote(python())} -m rankrepro.cli"


def module_command(module: str, *args) -> str:
    return " ".join([shlex.quote(python()), "-m", module, *(shlex.quote(str(a)) for a in args)])


def cli_command(*args) -> str:
    return module_command("rankrepro.cli", *args)


def record_command(kind: str, exp: Experiment, scale: str, work: str, cfg: dict) -> str:
    """The command that writes a rule's declared record (``--out`` added by the rule)."""
    work_dir = f"{work}/{exp.id}"
    if kind == "train-record":
        return module_command("rankrepro.workflow", kind, exp.id, "--scale", scale, "--work-dir", work_dir,
                              "--gpus", train_gpus(exp, scale, cfg))
    return module_command("rankrepro.workflow", kind, exp.id, "--scale", scale, "--raw",
                          f"{work_dir}/test/metrics.raw.json", "--train-record", f"{work_dir}/train.json")


def train_command(exp: Experiment, scale: str, work: str, data_root: str, cfg: dict, threads: int) -> str:
    work_dir = shlex.quote(f"{work}/{exp.id}")
    prepare = f"{module_command('rankrepro.workflow', 'prepare-work-dir', f'{work}/{exp.id}', run_key(exp, scale, cfg))} && "
    if scale == "smoke":
        return prepare + (f"{_cli(threads)} train {exp.config} --smoke --data-root {shlex.quote(data_root)} "
                f"--max-iters {smoke_iters(exp, cfg)} --work-dir {work_dir} --resume "
                f"--cfg-options default_hooks.checkpoint.interval={int(cfg['smoke'].get('checkpoint_interval', 50))}")
    gpus = train_gpus(exp, scale, cfg)
    accum = accumulation(exp, gpus)
    options = f" --cfg-options optim_wrapper.accumulative_counts={accum}" if accum > 1 else ""
    return prepare + (f"{torchrun_launcher(exp, scale, cfg)} "
            f"-m rankrepro.cli train {exp.config} --launcher pytorch --data-root {shlex.quote(data_root)} "
            f"--weights-dir {shlex.quote(str(Path(data_root) / 'weights'))} "
            f"--work-dir {work_dir} --resume{options}")


# -- SLURM: one job per training, torchrun inside it; several nodes where one has too few GPUs --

#: The rendezvous port of multi-node torchrun (c10d store on the job's first node).
RDZV_PORT = 29500


def train_nodes(exp: Experiment, scale: str, cfg: dict) -> tuple[int, int]:
    """(nodes, GPUs per node) of a paper-scale training: one node unless the config's
    ``gpus_per_node`` (the cluster's GPUs per node; null = one node holds them all) is smaller
    than the job's GPUs; then ceil(GPUs / gpus_per_node) nodes with an equal share each
    (torchrun starts the same number of processes on every node).  Smoke scale: (1, 0)."""
    gpus = train_gpus(exp, scale, cfg)
    per_node = cfg.get("gpus_per_node")
    if scale != "paper" or not per_node or gpus <= int(per_node):
        return 1, gpus
    nodes = -(-gpus // int(per_node))
    if gpus % nodes:
        raise WorkflowInputError(
            f"{exp.id}: {gpus} GPUs on nodes of {per_node} need {nodes} nodes, which cannot hold an "
            f"equal share each (set gpus to a multiple of {nodes}, or gpus_per_node to a divisor of {gpus})")
    return nodes, gpus // nodes


def torchrun_launcher(exp: Experiment, scale: str, cfg: dict) -> str:
    """The launcher before ``-m rankrepro.cli train`` of a paper-scale training.

    One node: ``run-on-gpus`` (distinct devices for concurrent local jobs; a no-op inside a
    SLURM job) and ``torchrun --standalone --nproc_per_node G``.  Several nodes (inside the
    SLURM job the ``train`` rule asks for, see :func:`slurm_train_resources`): ``srun``
    starts one torchrun per node, which meet at a c10d rendezvous on the job's first node
    (the batch host, where the rule's shell runs), keyed by the job id."""
    nodes, per_node = train_nodes(exp, scale, cfg)
    if nodes == 1:
        gpus = train_gpus(exp, scale, cfg)
        return (f"{module_command('rankrepro.workflow', 'run-on-gpus', gpus)} -- "
                f"{shlex.quote(python())} -m torch.distributed.run --standalone --nproc_per_node {gpus}")
    return srun_torchrun(nodes, per_node)


def srun_torchrun(nodes: int, gpus_per_node: int, cpus_per_gpu: int = CPUS_PER_GPU) -> str:
    """``srun`` one ``torchrun`` per node of the SLURM job, meeting at a c10d rendezvous on
    the node this shell runs on (the job's first node), keyed by the job id; the command
    (``-m rankrepro.cli train ...``) follows.  Needs only ``SLURM_JOB_ID`` in the
    environment: the plugin's jobstep clears the other ``SLURM_*`` variables, and ``srun``
    reads the allocation from the job id; outside SLURM it fails saying so."""
    return (f": \"${{SLURM_JOB_ID:?multi-node training (gpus_per_node) runs inside a SLURM job}}\" && "
            f"srun --nodes={nodes} --ntasks-per-node=1 --cpus-per-task={cpus_per_gpu * gpus_per_node} "
            f"--gres=gpu:{gpus_per_node} --kill-on-bad-exit=1 {shlex.quote(python())} -m torch.distributed.run "
            f"--nnodes {nodes} --nproc_per_node {gpus_per_node} --rdzv_backend c10d "
            f"--rdzv_endpoint \"$(hostname)\":{RDZV_PORT} --rdzv_id \"$SLURM_JOB_ID\"")


def slurm_train_resources(exp: Experiment, scale: str, cfg: dict) -> dict:
    """The ``train`` rule's resources for snakemake-executor-plugin-slurm besides ``gpu``,
    ``mem_mb`` and ``runtime`` (None = not set; the rule leaves it out).  Paper scale, one
    node: one task with all the job's CPUs (``tasks_per_gpu: 0``: else the plugin asks
    ``--ntasks-per-gpu=1``, G tasks of ``--cpus-per-task`` each).  Several nodes: ``nodes``,
    one task per node, ``gres: gpu:<per node>``, ``mpi`` (the plugin's jobstep then runs the
    rule's shell, whose ``srun`` starts the tasks, instead of wrapping it in ``srun -n1``).
    ``mem_mb`` is per node (sbatch ``--mem``)."""
    out = {"nodes": None, "tasks": None, "tasks_per_gpu": None, "cpus_per_task": None, "gres": None, "mpi": None}
    if scale != "paper":
        return out
    nodes, per_node = train_nodes(exp, scale, cfg)
    out["tasks_per_gpu"] = 0
    if nodes > 1:
        out.update(nodes=nodes, tasks=nodes, cpus_per_task=CPUS_PER_GPU * per_node, gres=f"gpu:{per_node}", mpi="srun")
    return out


def checkpoint_path(exp: Experiment, scale: str, work: str, cfg: dict) -> str:
    name = f"iter_{smoke_iters(exp, cfg)}.pth" if scale == "smoke" else exp.checkpoint
    return f"{work}/{exp.id}/{name}"


def test_command(exp: Experiment, scale: str, work: str, data_root: str, threads: int, cfg: dict | None = None) -> str:
    work_dir = shlex.quote(f"{work}/{exp.id}/test")
    if scale == "smoke":
        checkpoint = checkpoint_path(exp, scale, work, cfg)
        return (f"{_cli(threads)} test {exp.config} {shlex.quote(checkpoint)} --smoke "
                f"--data-root {shlex.quote(data_root)} --max-iters {smoke_iters(exp, cfg)} --work-dir {work_dir} "
                f"--out {work_dir}/metrics.raw.json")
    checkpoint = checkpoint_path(exp, scale, work, cfg)
    return (f"{module_command('rankrepro.workflow', 'run-on-gpus', 1)} -- {_cli(0)} test {exp.config} {shlex.quote(checkpoint)} --data-root {shlex.quote(data_root)} "
            f"--work-dir {work_dir} --out {work_dir}/metrics.raw.json")


def submit_command(exp: Experiment, scale: str, work: str, results: str, data_root: str, threads: int,
                   cfg: dict | None = None) -> str:
    """The COCO test-dev submission of a trained model (``rankrepro submit``; the rule adds
    ``--out``): a format-only run on test-dev (smoke: the synthetic validation images stand
    in), the zips for the evaluation server under ``<results>/test-dev/``."""
    checkpoint = shlex.quote(checkpoint_path(exp, scale, work, cfg))
    common = (f"--experiment {exp.id} --data-root {shlex.quote(data_root)} --work-dir {shlex.quote(f'{work}/{exp.id}/test-dev')} "
              f"--out-dir {shlex.quote(f'{results}/test-dev')}")
    if scale == "smoke":
        return f"{_cli(threads)} submit {exp.config} {checkpoint} --smoke --max-iters {smoke_iters(exp, cfg)} {common}"
    return f"{module_command('rankrepro.workflow', 'run-on-gpus', 1)} -- {_cli(0)} submit {exp.config} {checkpoint} {common}"


def test_dev_experiments(reg: Registry, table_key: str) -> list[str]:
    """The experiments whose rows of ``table_key`` are on COCO test-dev (their numbers come
    from the evaluation server: the workflow writes the files to upload)."""
    return sorted({row["experiment"] for row in reg.rows(table_key)
                   if row["split"] == "test-dev" and row["experiment"] and not row["quoted"]
                   and reg.experiments[row["experiment"]].implemented})


def table_name(reg: Registry, name: str) -> str:
    """A table as the user names it (``2``, ``A.11``, ``table2``, ``brs_readme_atss``, ``rs_paper/2``)
    -> its target suffix; unknown names are an error listing the known ones."""
    for candidate in (name, f"rs_paper/{name}", f"table{name}".replace(".", "")):
        try:
            return reg.table(candidate).target.removeprefix("reproduce_")
        except RegistryError:
            continue
    reg.table(name)  # raises with the list of known tables
    raise AssertionError("unreachable")


# -- records ---------------------------------------------------------------------------

def provenance(config: str | None) -> dict:
    def run(*cmd):
        try:
            return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    versions = {}
    for package in ("torch", "mmcv", "mmengine", "mmdet", "rankrepro"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:  # not installed
            versions[package] = None
    status = run("git", "status", "--porcelain", "--untracked-files=no")
    return {
        # an image has no .git: it carries the commit it was built from
        "git_commit": run("git", "rev-parse", "HEAD") or os.environ.get("RANKREPRO_GIT_COMMIT"),
        "git_dirty": bool(status) if status is not None else None,
        "config": config,
        "config_hash": config_hash(config) if config else None,
        "versions": versions,
        "python": sys.version.split()[0],
        "host": os.uname().nodename,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


#: Scalars a head logs as ``train/neg_per_pos_<...>`` (mmengine's MessageHub) are the
#: imbalance columns of RS paper Tables 10 and A.17; the record keeps their first-epoch mean.
IMBALANCE_PREFIX = "neg_per_pos_"


def imbalance(rows: list[dict]) -> dict:
    """Mean of every logged ``neg_per_pos_*`` scalar over the first epoch (the papers average
    over the iterations of the first epoch); all logged iterations when the log has no epochs."""
    by_iter = {r["iter"]: r for r in rows}  # a resumed run logs some iterations again
    first = [r for _, r in sorted(by_iter.items()) if r.get("epoch", 1) == 1]
    keys = sorted({k for r in first for k in r if k.startswith(IMBALANCE_PREFIX)})
    return {k: sum(r[k] for r in first if k in r) / sum(1 for r in first if k in r) for k in keys}


def read_train_scalars(work_dir: str | Path) -> list[dict]:
    """mmengine's logged training scalars of every run in ``work_dir`` (resumed runs too)."""
    rows = []
    for path in sorted(glob.glob(str(Path(work_dir) / "*" / "vis_data" / "scalars.json"))):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    entry = json.loads(line)
                    if "iter" in entry and "time" in entry and "loss" in entry:
                        rows.append(entry)
    return rows


def train_record(exp: Experiment, scale: str, work_dir: str, gpus: int) -> dict:
    work_dir = Path(work_dir)
    last = work_dir / "last_checkpoint"
    if not last.is_file():
        raise WorkflowInputError(f"{work_dir}: no last_checkpoint; training did not finish")
    checkpoint = last.read_text().strip()
    rows = read_train_scalars(work_dir)
    # one entry per logged iteration; a resumed run logs iterations after its checkpoint
    by_iter = {row["iter"]: row["time"] for row in rows}
    times = [by_iter[i] for i in sorted(by_iter)]
    warm = times[1:] if len(times) > 1 else times  # the first window holds start-up
    return {
        "experiment": exp.id,
        "scale": scale,
        "config": exp.config,
        "checkpoint": os.path.relpath(checkpoint, REPO_ROOT) if os.path.isabs(checkpoint) else checkpoint,
        "iterations": max(by_iter) if by_iter else None,
        "time_s_per_iter": sum(warm) / len(warm) if warm else None,
        "time_s_per_iter_note": "mean of mmengine's logged iteration times (window means), first logged window left out",
        "runs": len(glob.glob(str(work_dir / "*" / "vis_data" / "scalars.json"))),
        "imbalance": imbalance(rows),
        "batch": {
            "published_gpus": exp.gpus,
            "images_per_gpu": exp.images_per_gpu,
            "published_total": exp.batch_size,
            "gpus": gpus,
            "accumulative_counts": accumulation(exp, gpus) if scale == "paper" else None,
        },
        "provenance": provenance(exp.config),
    }


def published_metric_names(raw: dict) -> dict:
    """mmdet-style keys (``coco/bbox_mAP``, ``coco/segm_oLRP``, ``lvis/bbox_APr``,
    ``cityscapes/mAP``) -> the tables' names (``AP``, ``mask_oLRP``, ``APr``, ``mask_AP``)."""
    out = {}
    for key, value in raw.items():
        if not isinstance(value, (int, float)) or "/" not in key:
            continue
        prefix, _, name = key.partition("/")
        if prefix == "cityscapes":  # instance segmentation AP (cityscapesscripts), applied last
            continue
        iou, _, metric = name.partition("_")
        if iou not in ("bbox", "segm"):
            continue
        mapped = _AP_SUFFIXES.get(metric) if prefix == "coco" else _LVIS_SUFFIXES.get(metric)
        if metric in _LRP_SUFFIXES:
            mapped = metric
        if mapped is None:
            continue
        out[("mask_" if iou == "segm" else "") + mapped] = float(value)
    # Cityscapes with mmdet's CityScapesMetric: its official cityscapesscripts score
    # (cityscapes/mAP, cityscapes/AP@50) is taken as the mask AP over the COCO-style segm keys of
    # the same run.  The configs of the Bucketed README's Cityscapes rows do not use it: its
    # official configs evaluate COCO-style (mmdet 2.25 cityscapes_instance.py: metric bbox, segm;
    # the README prints a box AP), so theirs is the COCO-style mask AP.
    for key, name in (("cityscapes/mAP", "mask_AP"), ("cityscapes/AP@50", "mask_AP50"), ("cityscapes/AP50", "mask_AP50")):
        if isinstance(raw.get(key), (int, float)):
            out[name] = float(raw[key])
    return out


def metrics_record(exp: Experiment, scale: str, raw_path: str, train_record_path: str) -> dict:
    with open(raw_path) as f:
        raw = json.load(f)
    with open(train_record_path) as f:
        training = json.load(f)
    metrics = published_metric_names(raw.get("metrics", {}))
    if not metrics:
        raise WorkflowInputError(f"{raw_path}: no AP metrics in the test output")
    if training.get("time_s_per_iter") is not None:
        metrics["time_s_per_iter"] = training["time_s_per_iter"]
    if raw.get("fps") is not None:
        metrics["fps"] = raw["fps"]
    metrics.update(training.get("imbalance") or {})
    return {
        "schema_version": 1,
        "experiment": exp.id,
        "scale": scale,
        "split": "synthetic-val" if scale == "smoke" else exp.splits[0],
        "metrics": metrics,
        "units": "AP and oLRP keys are fractions in [0, 1]; time_s_per_iter in seconds; fps in images/s",
        "test": {k: raw.get(k) for k in ("checkpoint", "config", "fps", "test_images", "checkpoint_config_differs")
                 if k in raw},
        "train": training,
    }


def verify_dataset(dataset: str, root: str) -> dict:
    check_data_root(root)
    found, problems = {}, []
    for rel in DATASET_FILES[dataset]:
        path = Path(root) / rel
        if rel.endswith("/"):
            if not path.is_dir():
                problems.append(f"{path}: missing folder")
            elif not any(path.iterdir()):
                problems.append(f"{path}: empty folder")
            else:
                found[rel] = "folder"
        elif not path.is_file():
            problems.append(f"{path}: missing file")
        elif path.stat().st_size == 0:
            problems.append(f"{path}: empty file")
        else:
            found[rel] = path.stat().st_size
    if problems:
        raise WorkflowInputError(f"{dataset} under {root}: " + "; ".join(problems))
    return {"dataset": dataset, "data_root": str(root), "files": found, "downloads": download_records(dataset, root)}


def download_records(dataset: str, root: str) -> dict:
    """The records ``rankrepro.data.download fetch`` wrote for the dataset's archives
    (``data_root/downloads/<dataset>/<archive>.json``: URL, size, sha256 / md5 as measured, the
    expected values); empty where the user placed the data."""
    records = {}
    for path in sorted((Path(root) / "downloads" / dataset).glob("*.json")):
        with open(path) as f:
            records[path.name[: -len(".json")]] = json.load(f)
    return records


def visible_gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d for d in visible.split(",") if d.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:
        return []


def run_on_gpus(count: int, command: list[str], lock_dir: str | None = None, poll_s: float = 2.0) -> int:
    """Run ``command`` with ``CUDA_VISIBLE_DEVICES`` set to ``count`` devices that no other job
    started this way holds (one lock file per device, ``fcntl`` locks released when the job
    ends, even if it is killed).  Snakemake's ``gpu`` resource caps how many GPUs are busy;
    this gives concurrent jobs on one machine distinct devices.  Under SLURM
    (``SLURM_JOB_ID`` set) each job has its own allocation and runs without locks (device
    numbers restart at 0 in every job's cgroup, so locks by number would serialise jobs)."""
    import fcntl

    if os.environ.get("SLURM_JOB_ID"):  # SLURM gave this job its own devices: nothing to share out
        return subprocess.call(command)
    devices = visible_gpus()
    if count > len(devices):
        raise WorkflowInputError(f"the job needs {count} GPU(s); this machine shows {len(devices)} "
                                 f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})")
    lock_dir = Path(lock_dir or os.environ.get("RANKREPRO_GPU_LOCKS") or f"/tmp/rankrepro-gpu-locks-{os.getuid()}")
    lock_dir.mkdir(parents=True, exist_ok=True)
    while True:
        held = []
        for device in devices:
            handle = open(lock_dir / f"gpu{device}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            held.append((device, handle))
            if len(held) == count:
                break
        if len(held) == count:
            break
        for _, handle in held:
            handle.close()
        time.sleep(poll_s)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=",".join(d for d, _ in held))
    try:
        return subprocess.call(command, env=env)
    finally:
        for _, handle in held:
            handle.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rankrepro.workflow", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train-record")
    tr.add_argument("experiment")
    tr.add_argument("--scale", choices=["smoke", "paper"], required=True)
    tr.add_argument("--work-dir", required=True)
    tr.add_argument("--gpus", type=int, default=0)
    tr.add_argument("--out", required=True)
    mr = sub.add_parser("metrics-record")
    mr.add_argument("experiment")
    mr.add_argument("--scale", choices=["smoke", "paper"], required=True)
    mr.add_argument("--raw", required=True)
    mr.add_argument("--train-record", required=True)
    mr.add_argument("--out", required=True)
    vd = sub.add_parser("verify-dataset")
    vd.add_argument("dataset", choices=sorted(DATASET_FILES))
    vd.add_argument("root")
    vd.add_argument("--out", required=True)
    pw = sub.add_parser("prepare-work-dir", help="move a work dir of another run key aside, record the key")
    pw.add_argument("work_dir")
    pw.add_argument("key")
    rg = sub.add_parser("run-on-gpus", help="run a command on N devices no other such job holds")
    rg.add_argument("count", type=int)
    rg.add_argument("cmd", nargs=argparse.REMAINDER, help="-- the command")
    args = parser.parse_args(argv)
    if args.command == "prepare-work-dir":
        moved = prepare_work_dir(args.work_dir, args.key)
        if moved:
            print(f"{args.work_dir} held a run of another config, code or schedule: moved to {moved}; training from 0")
        return 0
    if args.command == "run-on-gpus":
        command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not command:
            parser.error("run-on-gpus needs a command after --")
        try:
            return run_on_gpus(args.count, command)
        except WorkflowInputError as err:
            print(f"rankrepro.workflow run-on-gpus: error: {err}", file=sys.stderr)
            return 2
    try:
        if args.command == "verify-dataset":
            write_json(args.out, verify_dataset(args.dataset, args.root))
            return 0
        exp = Registry.load().experiments[args.experiment]
        if args.command == "train-record":
            write_json(args.out, train_record(exp, args.scale, args.work_dir, args.gpus))
        else:
            write_json(args.out, metrics_record(exp, args.scale, args.raw, args.train_record))
    except (WorkflowInputError, RegistryError, OSError, KeyError) as err:
        print(f"rankrepro.workflow {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
