"""What a table costs before it runs (``rankrepro plan``, ``python -m rankrepro.plan``).

For each model a target trains (:meth:`Registry.table_experiments`), from the registry, the
resolved mmdet config (mmengine ``Config.fromfile``) and the published training times:

* **epochs** from ``train_cfg`` (``max_epochs`` of an ``EpochBasedTrainLoop``; an
  ``IterBasedTrainLoop``'s ``max_iters`` is the iteration count itself);
* **images per epoch**: the images mmdet's training dataset keeps, times its wrappers
  (``RepeatDataset`` ``times``; ``ClassBalancedDataset``: the sum over images of
  ``ceil(repeat factor)``, mmengine's repeat-factor sampling).  Exact with ``--data-root``
  when the annotation files are there (the dataset is built with mmdet's own classes, so
  ``filter_cfg`` -- ``filter_empty_gt``, ``min_size`` -- and the repeat factors are mmdet's);
  otherwise the documented counts of :data:`DOCUMENTED_IMAGES`, each with its source and
  whether it is what mmdet keeps;
* **iterations** per epoch as mmengine's loop counts them, ``len(train_dataloader)`` on every
  rank: ``DefaultSampler`` (``round_up=True``) gives each of W ranks ``ceil(N / W)`` indices,
  and mmdet's ``AspectRatioBatchSampler`` (``drop_last=False``) makes ``ceil(that /
  images_per_gpu)`` batches of them (its two aspect-ratio buckets are flushed together at the
  end, so the count is the same as one ``BatchSampler``'s); iterations = epochs x that;
* **seconds per iteration**: the published ``time_s_per_iter`` cell that the experiment feeds
  (``configs/published/*.csv``).  Where several sources publish one, the RS paper's (Table
  A.19, measured on the paper's Tesla V100s) is preferred over the READMEs' (the Bucketed
  README does not name its hardware); the others are shown beside it.  A default-loss
  baseline whose registry batch (mmdet's recipe, e.g. 8 GPUs x 2) differs from the same Table
  A.19 row's RS model gets a caveat: the paper only replaces the loss, so its time may be for
  the RS model's images per GPU;
* **GPU-hours** = iterations x s/iter x published GPUs / 3600.

**Wall-clock on the user's GPUs** (``--gpus N``): models run one after another, each on
``g = min(N, published GPUs)`` GPUs with gradient accumulation keeping the published batch
(:func:`rankrepro.workflow.accumulation`: g must divide the published count).  Each GPU
then sees the published images per iteration, so an iteration is taken to last the published
time, and a model takes epochs x ``ceil(ceil(N_img / g) / images_per_gpu)`` iterations.

Models without a published time are listed, counted, and left out of the totals unless
``--s-per-iter`` gives one; models whose metrics JSON exists under
``RESULTS/SCALE/metrics/`` are marked as trained (and left out of the "remaining" totals).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import RankReproError
from .registry import REPO_ROOT, Registry, feed_key

#: Sources of published times, most trusted first, with the reason shown in the plan.
TIME_SOURCES = {
    "rs_paper": "RS paper (Table A.19: Tesla V100, the paper's hardware)",
    "rs_readme": "RS README",
    "brs_readme": "Bucketed README (hardware not stated)",
    "alrp_readme": "aLRP README",
}


@dataclass(frozen=True)
class DocumentedCount:
    """Images of a training set when its annotations are not at hand."""

    images: int
    kept_by_mmdet: bool  # True: the count after mmdet's filter_empty_gt / min_size
    source: str


#: Documented training-set sizes (used without ``--data-root``).
DOCUMENTED_IMAGES = {
    # mmdet 3.3.0's own config comment, installed at
    # mmdet/.mim/configs/yolof/yolof_r50-c5_8xb8-iter-1x_coco.py: "COCO dataset has 117266 images
    # after filtering" (of train2017's 118287; detectron2's loader logs the same, "Removed 1021
    # images with no usable annotations. 117266 images left.").  No train2017 image is under
    # min_size=32 px (mmdet's 1x logs show 7330 iterations per epoch at 16 images: ceil(117266/16)).
    "coco": DocumentedCount(
        117266, True,
        "mmdet 3.3.0 configs/yolof/yolof_r50-c5_8xb8-iter-1x_coco.py: 'COCO dataset has 117266 images after "
        "filtering' (train2017 with filter_empty_gt)"),
    # ultralytics/cfg/datasets/lvis.yaml: "train: train.txt # train images ... 100170 images"; an LVIS
    # v1 train reader prints "Loaded 100170 images / Loaded 1270141 annotations" for lvis_v1_train.json.
    # How many of them mmdet's filter_empty_gt drops is not documented in any source found.
    "lvis": DocumentedCount(
        100170, False,
        "lvis_v1_train.json holds 100170 images (ultralytics cfg/datasets/lvis.yaml); images without "
        "annotations, which mmdet drops, not documented"),
    # The Cityscapes paper / site: 2975 finely annotated training images; mmdet's converter
    # (mmdet/.mim/tools/dataset_converters/cityscapes.py) keeps every one of them in
    # instancesonly_filtered_gtFine_train.json ("Loaded 2975 images from .../leftImg8bit/train").
    # How many have no instance of the 8 classes (dropped by filter_empty_gt) is not documented.
    "cityscapes": DocumentedCount(
        2975, False,
        "Cityscapes train: 2975 finely annotated images, all in mmdet's converted "
        "instancesonly_filtered_gtFine_train.json; images without instances, which mmdet drops, not documented"),
}


class PlanError(RankReproError):
    """A plan cannot be made: an unknown table, an unusable GPU count or --s-per-iter."""


# -- configs ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """What a config says about its training length and data."""

    config: str
    loop: str  # "epoch" | "iter"
    length: int  # max_epochs or max_iters
    images_per_gpu: int
    dataset: dict  # train_dataloader.dataset, pipelines removed
    round_up: bool
    drop_last: bool


def _strip_pipelines(node):
    if isinstance(node, dict):
        return {k: ([] if k == "pipeline" else _strip_pipelines(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_strip_pipelines(v) for v in node]
    return node


@lru_cache(maxsize=None)
def schedule(config: str) -> Schedule:
    """The training schedule of ``config`` (a path relative to the repository), resolved by
    mmengine's ``Config.fromfile`` (cached per process)."""
    from .runner import _read_config

    path = Path(config) if Path(config).is_absolute() else REPO_ROOT / config
    cfg = _read_config(path)
    train_cfg = cfg.get("train_cfg") or {}
    loop = str(train_cfg.get("type", ""))
    if "max_epochs" in train_cfg and "Iter" not in loop:
        kind, length = "epoch", int(train_cfg["max_epochs"])
    elif "max_iters" in train_cfg:
        kind, length = "iter", int(train_cfg["max_iters"])
    else:
        raise PlanError(f"{config}: train_cfg sets neither max_epochs nor max_iters ({dict(train_cfg)})")
    loader = cfg.train_dataloader
    sampler = loader.get("sampler") or {}
    batch_sampler = loader.get("batch_sampler") or {}
    return Schedule(
        config=config, loop=kind, length=length, images_per_gpu=int(loader.batch_size),
        dataset=_strip_pipelines(loader.dataset.to_dict() if hasattr(loader.dataset, "to_dict") else dict(loader.dataset)),
        round_up=bool(sampler.get("round_up", True)),
        # mmdet's AspectRatioBatchSampler and torch's BatchSampler default to drop_last=False;
        # without a batch_sampler, mmengine's DataLoader takes drop_last from the loader
        drop_last=bool(batch_sampler.get("drop_last", loader.get("drop_last", False))),
    )


def batches_per_epoch(images: int, gpus: int, images_per_gpu: int, round_up: bool = True,
                      drop_last: bool = False) -> int:
    """``len(train_dataloader)`` on rank 0: mmengine's ``DefaultSampler`` gives each of ``gpus``
    ranks ``ceil(images / gpus)`` indices (``round_up``), batched by ``images_per_gpu``."""
    per_rank = math.ceil(images / gpus)  # rank 0's share also without round_up
    return per_rank // images_per_gpu if drop_last else math.ceil(per_rank / images_per_gpu)


# -- images per epoch ------------------------------------------------------------------

@dataclass
class EpochImages:
    images: int  # images per epoch after the wrappers (a lower bound where exact is False and rfs)
    base: int  # images of the unwrapped dataset
    how: str  # "counted" | "documented" | "file count" | "rfs lower bound"
    note: str
    exact: bool


def _wrappers(dataset: dict) -> tuple[list, dict]:
    """(wrapper types and arguments, outside in; the innermost dataset config)."""
    chain = []
    node = dataset
    while "dataset" in node and isinstance(node["dataset"], dict):
        kind = str(node.get("type", "")).split(".")[-1]
        if kind not in ("RepeatDataset", "ClassBalancedDataset"):
            raise PlanError(f"dataset wrapper {kind!r} is not supported by the plan")
        chain.append((kind, node))
        node = node["dataset"]
    return chain, node


def _annotation_file(dataset: dict, data_root: str) -> Path:
    root = dataset.get("data_root", "") or ""
    if root.startswith("data/"):
        root = str(Path(data_root) / root[len("data/"):])
    return Path(root) / dataset.get("ann_file", "")


@lru_cache(maxsize=None)
def _count_with_mmdet(dataset_json: str, data_root: str) -> tuple[int, int]:
    """(images of the innermost dataset that mmdet keeps, images per epoch after the wrappers),
    by building the training dataset with mmdet's classes under ``data_root``."""
    from mmengine.config import ConfigDict
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules

    from .runner import relocate_data

    from mmengine.dataset import ClassBalancedDataset, RepeatDataset

    register_all_modules(init_default_scope=True)
    cfg = ConfigDict(dataset=json.loads(dataset_json))
    relocate_data(cfg, data_root, "the training dataset")
    try:
        dataset = DATASETS.build(cfg.dataset)  # full_init: loads, filters, computes repeat factors
    except (OSError, ValueError, KeyError, AssertionError) as err:
        raise PlanError(f"{_annotation_file(_wrappers(cfg.dataset)[1], data_root)}: mmdet cannot read the "
                        f"training set: {type(err).__name__}: {err}") from None
    inner = dataset
    while isinstance(inner, (RepeatDataset, ClassBalancedDataset)):
        inner = inner.dataset
    return len(inner), len(dataset)


def epoch_images(dataset_key: str, sched: Schedule, data_root: str | None = None) -> EpochImages:
    """Images per epoch of a config's training set (see the module docstring)."""
    chain, inner = _wrappers(sched.dataset)
    kinds = [k for k, _ in chain]
    missing_note = ""
    if data_root is not None:
        ann = _annotation_file(inner, data_root)
        if ann.is_file():
            kept, total = _count_with_mmdet(json.dumps(sched.dataset, sort_keys=True), str(data_root))
            wrapped = f" ({' of '.join(kinds)})" if kinds else ""
            return EpochImages(total, kept, "counted", f"counted by mmdet from {ann}{wrapped}", True)
        missing_note = f"{ann} not found; "
    if dataset_key not in DOCUMENTED_IMAGES:
        raise PlanError(f"no documented image count for dataset {dataset_key!r}; give --data-root")
    doc = DOCUMENTED_IMAGES[dataset_key]
    images = doc.images
    exact = doc.kept_by_mmdet
    how = "documented" if exact else "file count"
    note = missing_note + doc.source
    for kind, node in reversed(chain):
        if kind == "RepeatDataset":
            images *= int(node["times"])
            note += f"; RepeatDataset x{int(node['times'])}"
        else:  # ClassBalancedDataset: sum of ceil(repeat factors) >= the images kept
            exact = False
            how = "rfs lower bound"
            note += (f"; ClassBalancedDataset (oversample_thr={node.get('oversample_thr')}): its epoch length "
                     f"(sum of ceil(repeat factor) over the images kept) needs the annotations (--data-root); shown: "
                     f"the unrepeated set, a lower bound" + ("" if doc.kept_by_mmdet else
                                                            " if mmdet's filtering drops no image"))
    return EpochImages(images, doc.images, how, note, exact)


# -- published times -------------------------------------------------------------------

def published_times(reg: Registry, exp) -> list[dict]:
    """Every published ``time_s_per_iter`` cell ``exp`` feeds, most trusted source first."""
    cells = reg.cells[reg.cells["metric"] == "time_s_per_iter"]
    times = {feed_key(c.source, c.table, c.row_id, c.group): c for c in cells.itertuples()}
    found = []
    for feed in exp.feeds:
        cell = times.get(feed)
        if cell is not None:
            found.append({"s_per_iter": float(cell.value), "cell": feed, "source": cell.source,
                          "source_text": TIME_SOURCES.get(cell.source, cell.source)})
    order = list(TIME_SOURCES)
    found.sort(key=lambda t: order.index(t["source"]) if t["source"] in order else len(order))
    return found


def _timing_caveat(reg: Registry, exp, cell: str) -> str | None:
    """Where a published time may have been measured at another per-GPU batch than the entry's.

    RS paper Table A.19 times each detector with its standard loss and with RS Loss; the paper
    trains "the standard configuration of each detector and only replace[s] the loss function"
    (Sec. 6), so the standard-loss time was presumably taken at the RS model's images per GPU.
    A registry baseline on another batch (mmdet's recipe, e.g. 8 GPUs x 2) gets a note."""
    parts = cell.split("/")
    if parts[0] != "rs_paper" or len(parts) != 4 or parts[3] != "standard_loss":
        return None
    partner = reg.feeders().get("/".join(parts[:3] + ["rs_loss"]))
    if partner is None or reg.experiments[partner].images_per_gpu == exp.images_per_gpu:
        return None
    theirs = reg.experiments[partner].images_per_gpu
    return (f"caveat: this baseline's published batch has {exp.images_per_gpu} images/GPU, the same row's RS "
            f"model ({partner}) {theirs}; if Table A.19 timed both at {theirs}/GPU (the paper only replaces "
            f"the loss), GPU-hours scale by about {exp.images_per_gpu / theirs:g}")


def parse_s_per_iter(values: list[str] | None, reg: Registry) -> tuple[float | None, dict]:
    """``--s-per-iter`` values: ``SECONDS`` (every model without a published time) or
    ``EXPERIMENT=SECONDS`` (that model, over a published time too)."""
    default, per_exp = None, {}
    for text in values or []:
        name, sep, number = text.rpartition("=")
        try:
            seconds = float(number)
        except ValueError:
            raise PlanError(f"--s-per-iter {text!r}: expected SECONDS or EXPERIMENT=SECONDS") from None
        if not seconds > 0 or math.isinf(seconds):
            raise PlanError(f"--s-per-iter {text!r}: seconds must be a positive number")
        if sep:
            if name not in reg.experiments:
                raise PlanError(f"--s-per-iter {text!r}: unknown experiment {name!r}")
            per_exp[name] = seconds
        else:
            default = seconds
    return default, per_exp


# -- the plan --------------------------------------------------------------------------

@dataclass
class ModelPlan:
    experiment: str
    dataset: str
    published_gpus: int
    images_per_gpu: int
    implemented: bool
    config: str | None = None
    missing: str | None = None
    epochs: int | None = None
    max_iters: int | None = None
    images_per_epoch: int | None = None
    images_how: str | None = None
    images_note: str | None = None
    iterations_per_epoch: int | None = None
    iterations: int | None = None
    s_per_iter: float | None = None
    s_per_iter_source: str | None = None  # "<cell> (<source text>)" or "--s-per-iter"
    s_per_iter_why: str | None = None
    other_times: list = field(default_factory=list)
    gpu_hours: float | None = None
    gpus_used: int | None = None
    accumulation: int | None = None
    iterations_on_gpus: int | None = None
    wall_hours: float | None = None
    trained: bool = False


def plan_model(reg: Registry, exp_id: str, gpus: int | None = None, data_root: str | None = None,
               s_default: float | None = None, s_per_exp: dict | None = None,
               metrics_dir: Path | None = None) -> ModelPlan:
    from .workflow import WorkflowInputError, accumulation

    exp = reg.experiments[exp_id]
    plan = ModelPlan(experiment=exp.id, dataset=exp.dataset, published_gpus=exp.gpus,
                     images_per_gpu=exp.images_per_gpu, implemented=exp.implemented,
                     config=exp.config, missing=exp.missing)
    if metrics_dir is not None:
        plan.trained = (metrics_dir / f"{exp.id}.json").is_file()
    times = published_times(reg, exp)
    if s_per_exp and exp.id in s_per_exp:
        plan.s_per_iter, plan.s_per_iter_source = s_per_exp[exp.id], "--s-per-iter"
        plan.s_per_iter_why = "given for this model"
        plan.other_times = times
    elif times:
        plan.s_per_iter = times[0]["s_per_iter"]
        plan.s_per_iter_source = f"{times[0]['cell']} ({times[0]['source_text']})"
        plan.other_times = times[1:]
        if len(times) > 1:
            others = ", ".join(f"{t['s_per_iter']:g} in {t['cell']}" for t in times[1:])
            plan.s_per_iter_why = f"{TIME_SOURCES.get(times[0]['source'], times[0]['source'])} preferred over {others}"
        caveat = _timing_caveat(reg, exp, times[0]["cell"])
        if caveat:
            plan.s_per_iter_why = f"{plan.s_per_iter_why}; {caveat}" if plan.s_per_iter_why else caveat
    elif s_default is not None:
        plan.s_per_iter, plan.s_per_iter_source = s_default, "--s-per-iter"
        plan.s_per_iter_why = "no published time; the user's"
    if not exp.implemented:
        return plan
    sched = schedule(exp.config)
    if sched.images_per_gpu != exp.images_per_gpu:
        raise PlanError(f"{exp.id}: the registry says {exp.images_per_gpu} images per GPU, {exp.config} "
                        f"train_dataloader.batch_size {sched.images_per_gpu}")

    def iterations(on_gpus: int) -> tuple[int | None, int]:
        if sched.loop == "iter":
            return None, sched.length
        per_epoch = batches_per_epoch(plan.images_per_epoch, on_gpus, sched.images_per_gpu,
                                      sched.round_up, sched.drop_last)
        return per_epoch, per_epoch * sched.length

    if sched.loop == "epoch":
        plan.epochs = sched.length
        images = epoch_images(exp.dataset, sched, data_root)
        plan.images_per_epoch, plan.images_how, plan.images_note = images.images, images.how, images.note
    else:
        plan.max_iters = sched.length
    plan.iterations_per_epoch, plan.iterations = iterations(exp.gpus)
    if plan.s_per_iter is not None:
        plan.gpu_hours = plan.iterations * plan.s_per_iter * exp.gpus / 3600
    if gpus is not None:
        used = min(gpus, exp.gpus)
        try:
            plan.accumulation = accumulation(exp, used)
        except WorkflowInputError as err:
            raise PlanError(f"--gpus {gpus}: {err}") from None
        plan.gpus_used = used
        # an iteration-based config runs max_iters data iterations whatever the GPU count
        plan.iterations_on_gpus = iterations(used)[1]
        if plan.s_per_iter is not None:
            plan.wall_hours = plan.iterations_on_gpus * plan.s_per_iter / 3600
    return plan


def _sum(values) -> float:
    return float(sum(v for v in values if v is not None))


def totals(models: list[ModelPlan], gpus: int | None) -> dict:
    """Totals over ``models`` (each counted once)."""
    timed = [m for m in models if m.gpu_hours is not None]
    remaining = [m for m in timed if not m.trained]
    out = {
        "models": len(models),
        "models_with_time": len(timed),
        "models_without_time": sum(1 for m in models if m.implemented and m.s_per_iter is None),
        "models_not_implemented": sum(1 for m in models if not m.implemented),
        "models_trained": sum(1 for m in models if m.trained),
        "models_with_inexact_images": sum(1 for m in models if m.implemented and m.epochs is not None
                                          and m.images_how not in ("counted", "documented")),
        "gpu_hours": _sum(m.gpu_hours for m in timed),
        "gpu_hours_remaining": _sum(m.gpu_hours for m in remaining),
    }
    if gpus is not None:
        out["gpus"] = gpus
        out["wall_hours"] = _sum(m.wall_hours for m in timed)
        out["wall_hours_remaining"] = _sum(m.wall_hours for m in remaining)
    return out


def resolve_targets(reg: Registry, names: list[str]) -> list[str]:
    """Table keys (``rs_paper/1``) of the targets as the user names them; ``reproduce_all`` or
    ``all``: every table.  Unknown names raise the registry's error listing the known ones."""
    from .workflow import table_name

    keys = []
    for name in names:
        if name in ("reproduce_all", "all"):
            candidates = list(reg.tables)
        else:
            candidates = [reg.table(table_name(reg, name)).key]
        keys.extend(k for k in candidates if k not in keys)
    return keys


def make_plan(names: list[str], gpus: int | None = None, data_root: str | None = None,
              s_per_iter: list[str] | None = None, results: str | None = "results", scale: str = "paper",
              registry: Registry | None = None) -> dict:
    """The plan of the targets ``names``: per table its models and totals, and an overall
    total that counts a model shared by several tables once."""
    reg = registry or Registry.load()
    if gpus is not None and gpus < 1:
        raise PlanError(f"--gpus must be >= 1, got {gpus}")
    if data_root is not None and not Path(data_root).is_dir():
        raise PlanError(f"--data-root {data_root} is not a folder")
    s_default, s_per_exp = parse_s_per_iter(s_per_iter, reg)
    metrics_dir = Path(results) / scale / "metrics" if results else None
    keys = resolve_targets(reg, names)
    cache: dict[str, ModelPlan] = {}
    tables = []
    for key in keys:
        models = []
        for exp_id in reg.table_experiments(key):
            if exp_id not in cache:
                cache[exp_id] = plan_model(reg, exp_id, gpus, data_root, s_default, s_per_exp, metrics_dir)
            models.append(cache[exp_id])
        tables.append({"table": key, "target": reg.tables[key].target, "title": reg.tables[key].title,
                       "models": models, "total": totals(models, gpus)})
    return {"tables": tables, "total": totals(list(cache.values()), gpus), "gpus": gpus,
            "data_root": data_root, "metrics_dir": str(metrics_dir) if metrics_dir else None}


# -- output ----------------------------------------------------------------------------

def to_json(plan: dict) -> dict:
    out = dict(plan)
    out["tables"] = [dict(t, models=[asdict(m) for m in t["models"]]) for t in plan["tables"]]
    return out


def _fmt(value, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _total_lines(total: dict, gpus: int | None, label: str) -> list[str]:
    if total["models_with_time"]:
        lines = [f"{label}: {total['gpu_hours']:,.1f} GPU-hours over {total['models_with_time']} of "
                 f"{total['models']} models"]
    else:
        lines = [f"{label}: no estimate: none of its {total['models']} models has a published time"]
    excluded = []
    if total["models_without_time"]:
        excluded.append(f"{total['models_without_time']} without a published time (give --s-per-iter)")
    if total["models_not_implemented"]:
        excluded.append(f"{total['models_not_implemented']} not implemented")
    if excluded:
        lines.append("  excluded: " + "; ".join(excluded))
    if total["models_with_inexact_images"]:
        lines.append(f"  {total['models_with_inexact_images']} model(s) with an inexact epoch length "
                     "(see 'images'; --data-root counts them)")
    if total["models_trained"]:
        lines.append(f"  {total['models_trained']} already trained; remaining: {total['gpu_hours_remaining']:,.1f} GPU-hours")
    if gpus is not None and total["models_with_time"]:
        lines.append(f"  wall-clock on {gpus} GPU(s), one model after another: {total['wall_hours']:,.1f} h "
                     f"({total['wall_hours'] / 24:,.1f} days)"
                     + (f"; remaining {total['wall_hours_remaining']:,.1f} h" if total["models_trained"] else ""))
    return lines


def render(plan: dict) -> str:
    """The plan as a readable text table."""
    gpus = plan["gpus"]
    head = ["experiment", "dataset", "GPUs x img", "epochs", "images/epoch", "iters", "s/iter", "GPU-h"]
    if gpus is not None:
        head += ["on GPUs", "wall h"]
    head += ["trained"]
    out = []
    notes: dict[str, int] = {}

    def note_ref(text: str | None) -> str:
        if not text:
            return ""
        notes.setdefault(text, len(notes) + 1)
        return f" [{notes[text]}]"

    for table in plan["tables"]:
        n = len(table["models"])
        out.append(f"== {table['table']} ({table['target']}): {n} model{'s' if n != 1 else ''} ==")
        rows = []
        for m in table["models"]:
            if not m.implemented:
                rows.append([m.experiment, m.dataset, f"{m.published_gpus} x {m.images_per_gpu}",
                             "not implemented" + note_ref(m.missing)] + [""] * (len(head) - 4))
                continue
            length = _fmt(m.epochs) if m.epochs is not None else f"{m.max_iters} it"
            images = ("-" if m.images_per_epoch is None else
                      f"{m.images_per_epoch:,}" + ("" if m.images_how in ("counted", "documented") else " ~")
                      + note_ref(m.images_note))
            s = ("none" if m.s_per_iter is None else
                 f"{m.s_per_iter:g}" + note_ref(f"{m.s_per_iter_source}"
                                                + (f"; {m.s_per_iter_why}" if m.s_per_iter_why else "")))
            row = [m.experiment, m.dataset, f"{m.published_gpus} x {m.images_per_gpu}", length, images,
                   f"{m.iterations:,}", s, _fmt(m.gpu_hours, ",.1f")]
            if gpus is not None:
                row += [f"{m.gpus_used}" + (f" (acc {m.accumulation})" if m.accumulation and m.accumulation > 1 else ""),
                        _fmt(m.wall_hours, ",.1f")]
            row += ["yes" if m.trained else ""]
            rows.append(row)
        widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
        out.append("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
        for r in rows:
            out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        out.extend(_total_lines(table["total"], gpus, "total"))
        out.append("")
    if len(plan["tables"]) > 1:
        out.extend(_total_lines(plan["total"], gpus, f"all {len(plan['tables'])} tables (a shared model once)"))
        out.append("")
    if notes:
        out.append("notes:")
        out.extend(f"  [{i}] {text}" for text, i in notes.items())
        out.append("  ~ : not exact (the annotation file's count before mmdet's filtering, or RFS's unrepeated "
                   "set); --data-root counts what mmdet keeps")
    out.append("GPU-hours = iterations x s/iter x published GPUs / 3600; iterations = epochs x "
               "ceil(ceil(images / GPUs) / images per GPU) (mmengine's DefaultSampler, drop_last False).")
    return "\n".join(out)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The ``plan`` options (on ``parser`` when given, e.g. a ``rankrepro plan`` subparser)."""
    parser = parser or argparse.ArgumentParser(prog="rankrepro plan", description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="+", metavar="TARGET",
                        help="tables as the workflow names them: reproduce_table1, table1, 1, A.11, "
                             "brs_readme_atss, rs_paper/2; reproduce_all for every table")
    parser.add_argument("--gpus", type=int, help="your GPU count: adds the wall-clock time, models one after another")
    parser.add_argument("--data-root", help="the paper-scale data root: count images per epoch from its "
                                            "annotation files as mmdet does (exact; slower)")
    parser.add_argument("--s-per-iter", action="append", metavar="[EXPERIMENT=]SECONDS",
                        help="seconds per iteration for models without a published time (SECONDS), or for "
                             "one model (EXPERIMENT=SECONDS); repeatable")
    parser.add_argument("--results", default="results", help="results root whose SCALE/metrics/*.json mark "
                                                             "trained models (default: results)")
    parser.add_argument("--scale", choices=["paper", "smoke"], default="paper", help="(default: paper)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    return parser


def run(args) -> int:
    plan = make_plan(args.targets, gpus=args.gpus, data_root=args.data_root, s_per_iter=args.s_per_iter,
                     results=args.results, scale=args.scale)
    print(json.dumps(to_json(plan), indent=1) if args.json else render(plan))
    return 0


def main(argv=None) -> int:
    """``python -m rankrepro.plan``: bad input prints ``rankrepro plan: error: ...``, exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except RankReproError as err:
        print(f"rankrepro plan: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
