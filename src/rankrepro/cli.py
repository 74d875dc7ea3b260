"""The ``rankrepro`` command line."""
from __future__ import annotations

import argparse
import sys

from .errors import RankReproError

#: --max-iters of the smoke variant when not given.
DEFAULT_SMOKE_ITERS = 300


def _evaluate(args) -> int:
    from .evaluation import EvaluationInputError, evaluate_files
    from .evaluation.report import check_output_path, write_json_atomic

    def error(message) -> int:
        print(f"rankrepro evaluate: error: {message}", file=sys.stderr)
        return 2

    if args.score_grid is not None and args.olrp_mode != "threshold":
        return error("--score-grid applies to --olrp-mode threshold only")
    try:
        # before the evaluation, which may take minutes: never an input, never read-only
        check_output_path(args.out, inputs=(args.gt, args.dt))
        metrics = evaluate_files(args.gt, args.dt, args.iou_type, args.dataset, args.score_grid, args.olrp_mode)
    except EvaluationInputError as err:
        return error(err)
    try:
        write_json_atomic(metrics, args.out)
    except OSError as err:
        return error(f"{args.out}: cannot write the metrics ({err.strerror or err})")
    keys = [k for k in metrics if k.startswith(("AP", "oLRP"))]
    print(" ".join(f"{k}={metrics[k]:.4f}" for k in keys if metrics[k] == metrics[k]))
    print(f"wrote {args.out}")
    return 0


def _make_data(args) -> int:
    from .data.synthetic import make_synthetic_coco

    info = make_synthetic_coco(args.root, num_train=args.num_train, num_val=args.num_val, seed=args.seed)
    counts = ", ".join(f"{split}: {n} images, {sum(info['instances'][split].values())} objects" for split, n in info["num_images"].items())
    print(f"wrote the synthetic dataset to {args.root} ({counts})")
    return 0


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _path_text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _run_options(parser) -> None:
    parser.add_argument("config", type=_path_text, help="an mmdet config, e.g. configs/atss/rs_atss_r50_fpn_1x_coco.py")
    parser.add_argument("--work-dir", required=True, type=_path_text, help="logs and checkpoints")
    parser.add_argument("--smoke", action="store_true", help="the CPU-sized variant on the synthetic dataset")
    parser.add_argument(
        "--data-root", type=_path_text,
        help="with --smoke (required): the synthetic dataset; without: the folder that holds the datasets "
        "paper-scale configs read under data/ (coco/, lvis_v1/, cityscapes/)",
    )
    parser.add_argument(
        "--max-iters", type=_int_at_least(1), default=None,
        help=f"iterations of the smoke variant (>= 1, default {DEFAULT_SMOKE_ITERS}; only with --smoke)",
    )
    parser.add_argument(
        "--weights-dir", type=_path_text, default=None,
        help="load the pretrained checkpoints the config names (torchvision://..., open-mmlab://..., URLs) from this "
        "folder (the workflow's data_root/weights/, files named as in configs/datasets.yaml) instead of the internet",
    )
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default=None, help="override config keys, key=value")
    parser.add_argument(
        "--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none",
        help="distributed launcher: 'pytorch' under torchrun (one process per GPU)",
    )


def _check_run_options(parser, args) -> None:
    """Options of `train` / `test` that only make sense together."""
    if args.smoke and args.data_root is None:
        parser.error("--smoke needs --data-root (a dataset made by `rankrepro make-data`)")
    if not args.smoke and args.max_iters is not None:
        parser.error("--max-iters is used only with --smoke (paper-scale configs keep their schedule)")


def _run_kwargs(args) -> dict:
    return dict(
        smoke=args.smoke, data_root=args.data_root,
        max_iters=DEFAULT_SMOKE_ITERS if args.max_iters is None else args.max_iters,
        cfg_options=args.cfg_options, launcher=args.launcher, weights_dir=args.weights_dir,
    )


def _train(args) -> int:
    from .runner import train

    train(args.config, args.work_dir, resume=args.resume, **_run_kwargs(args))
    return 0


def _test(args) -> int:
    from .engine import describe_differences
    from .runner import test_checkpoint

    result = test_checkpoint(args.config, args.checkpoint, args.work_dir, out=args.out,
                             strict_config=args.strict_config, **_run_kwargs(args))
    print(" ".join(f"{k}={v:.4f}" for k, v in result.metrics.items() if isinstance(v, float)))
    report = result.checkpoint_config
    if not report["stored"]:
        print(f"rankrepro test: warning: checkpoint {args.checkpoint} stores no config; not compared with "
              f"{args.config}", file=sys.stderr)
    elif not report["matches"]:
        print(f"rankrepro test: warning: checkpoint {args.checkpoint}: "
              f"{describe_differences(report['differences'])}", file=sys.stderr)
    return 0


class DictAction(argparse.Action):
    """``key=value`` pairs into a dict, values parsed as Python literals where possible."""

    def __call__(self, parser, namespace, values, option_string=None):
        import ast

        options = {}
        for item in values:
            key, sep, value = item.partition("=")
            if not sep:
                parser.error(f"{option_string} expects key=value, got {item!r}")
            try:
                options[key] = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                options[key] = value
        setattr(namespace, self.dest, options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rankrepro", description="RankRepro: ranking-based detection losses.")
    commands = parser.add_subparsers(dest="command", required=True)
    ev = commands.add_parser(
        "evaluate",
        help="COCO/LVIS AP and oLRP of a detection file",
        description="AP (pycocotools / lvis) and oLRP with its components (tau = 0.5) of detections in the "
        "COCO results format; writes a metrics JSON with fractions in [0, 1] (null where undefined).",
    )
    ev.add_argument("--gt", required=True, help="ground truth (COCO or LVIS annotation JSON)")
    ev.add_argument("--dt", required=True, help="detections (COCO results format JSON list)")
    ev.add_argument("--iou-type", choices=["bbox", "segm"], default="bbox")
    ev.add_argument("--dataset", choices=["coco", "lvis"], default="coco")
    ev.add_argument(
        "--out", required=True,
        help="metrics JSON to write (checked before evaluating: not --gt or --dt, not read-only; "
        "missing folders are created)",
    )
    ev.add_argument(
        "--olrp-mode",
        choices=["official", "threshold"],
        default="official",
        help="official (default): the LRP-Error evaluator's minimum over the ranks of each class's "
        "detections sorted by score (ties in image, then file order; the first minimum); threshold: the "
        "minimum over score thresholds, tied detections entering together",
    )

    def score_grid_step(text: str) -> float:
        from .evaluation.lrp import MIN_SCORE_GRID

        try:
            step = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not MIN_SCORE_GRID <= step <= 1:  # also rejects nan
            raise argparse.ArgumentTypeError(
                f"must be in [{MIN_SCORE_GRID:g}, 1] (a step of the threshold grid 0, STEP, ..., 1), got {text}"
            )
        return step

    score_grid_step.__name__ = "score grid step"
    ev.add_argument(
        "--score-grid",
        type=score_grid_step,
        default=None,
        metavar="STEP",
        help="with --olrp-mode threshold: minimise LRP over the score thresholds 0, STEP, ..., 1 only, as the "
        "2018 LRP toolkit did with 0.01 (STEP in [1e-4, 1])",
    )
    ev.set_defaults(handler=_evaluate)

    data = commands.add_parser(
        "make-data", help="generate the synthetic COCO-format dataset",
        description="Generate the synthetic COCO-format dataset into ROOT: a new or empty folder, or one that "
        "holds a dataset generated before (recognised by its manifest.json), which is replaced; files it did "
        "not generate are never overwritten or deleted (any other folder is an error).",
    )
    data.add_argument("root", type=_path_text, help="output folder (new, empty or a previously generated dataset)")
    data.add_argument("--num-train", type=_int_at_least(1), default=200, help="training images (>= 1, default 200)")
    data.add_argument("--num-val", type=_int_at_least(1), default=50, help="validation images (>= 1, default 50)")
    data.add_argument("--seed", type=_int_at_least(0), default=0, help="random seed (>= 0, default 0)")
    data.set_defaults(handler=_make_data)

    tr = commands.add_parser(
        "train", help="train an mmdet config (mmengine Runner)",
        description="Train an mmdet config with mmengine's Runner. Checkpoints are written atomically (a kill "
        "at any moment keeps every complete checkpoint); the smoke variant saves every 50 iterations and keeps "
        "the last two.",
    )
    _run_options(tr)
    tr.add_argument(
        "--resume", action="store_true",
        help="continue from the newest complete checkpoint in --work-dir (truncated or corrupt ones are skipped "
        "with a warning); a work dir without checkpoints starts from iteration 0; one whose checkpoints are all "
        "unusable is an error",
    )
    tr.set_defaults(handler=_train, check=lambda args, p=tr: _check_run_options(p, args))

    te = commands.add_parser(
        "test", help="evaluate a checkpoint; metrics JSON with --out",
        description="Evaluate a checkpoint. It is loaded strictly: missing, unexpected or size-mismatched "
        "parameters are an error (exit 2, no metrics written). Where the model config stored in the checkpoint "
        "differs from CONFIG, a warning lists the differences and the metrics JSON records them under "
        "checkpoint_config.",
    )
    _run_options(te)
    te.add_argument("checkpoint", type=_path_text, help="the checkpoint (.pth) to evaluate")
    te.add_argument("--out", type=_path_text, help="metrics JSON to write (not an input file)")
    te.add_argument(
        "--strict-config", action="store_true",
        help="make a difference between the checkpoint's stored model config and CONFIG an error (exit 2)",
    )
    te.set_defaults(handler=_test, check=lambda args, p=te: _check_run_options(p, args))

    tb = commands.add_parser(
        "tables", help="regenerate published tables: published vs reproduced",
        description="Render tables (Markdown, CSV, LaTeX, HTML, PNG/PDF plot, JSON summary) from the workflow's "
        "metrics JSONs under RESULTS/SCALE/metrics/, and refresh RESULTS/README.md.",
    )
    which = tb.add_mutually_exclusive_group(required=True)
    which.add_argument("--table", action="append", help="a table: 2, A.11, table2, brs_readme_atss or rs_paper/2 (repeatable)")
    which.add_argument("--all", action="store_true", help="every table of configs/tables.yaml")
    tb.add_argument("--results", default="results", type=_path_text, help="the results root (default: results)")
    tb.add_argument("--scale", choices=["smoke", "paper"], default="smoke")
    tb.add_argument("--out", type=_path_text, help="output folder (default: RESULTS/SCALE/tables)")
    tb.add_argument("--tolerance", type=float, default=0.3, help="|delta AP| in points for a row's verdict (default 0.3)")
    tb.set_defaults(handler=_tables)

    sb = commands.add_parser(
        "submit", help="COCO test-dev: a format-only run and the zips for the evaluation server",
        description="Run a checkpoint format-only on COCO test-dev (with --smoke: the synthetic validation images "
        "as a stand-in), check each results file with pycocotools, zip it under COCO's upload name into OUT_DIR "
        "and write the record (--out) last.",
    )
    _run_options(sb)
    from .submission import add_arguments

    add_arguments(sb)
    sb.set_defaults(handler=_submit, check=lambda args, p=sb: _check_run_options(p, args))

    pl = commands.add_parser(
        "plan", help="what a table costs: models, GPUs x epochs, iterations, GPU-hours from published s/iter",
        description="List the models a table target trains, their published GPUs and schedule, iterations and "
        "GPU-hours from the papers' published seconds per iteration (see `python -m rankrepro.plan --help`).",
    )
    from .plan import build_parser as plan_options
    from .plan import run as plan_run

    plan_options(pl)
    pl.set_defaults(handler=plan_run)
    return parser


def _submit(args) -> int:
    from .atomic import write_json
    from .submission import submit

    if args.data_root is None:
        raise RankReproError("submit needs --data-root (the folder holding coco/; with --smoke the synthetic set)")
    kwargs = _run_kwargs(args)
    data_root = kwargs.pop("data_root")
    record = submit(args.config, args.checkpoint, args.work_dir, args.out_dir, args.experiment, data_root=data_root,
                    **kwargs)
    write_json(args.out, record)
    for iou, entry in record["files"].items():
        print(f"{iou}: {entry['zip']} ({entry['detections']} detections on {entry['images_with_detections']} of "
              f"{entry['images']} images)")
    return 0


def _tables(args) -> int:
    from .registry import Registry
    from .tables import render_tables

    if not args.tolerance > 0:
        raise RankReproError(f"--tolerance must be > 0, got {args.tolerance}")
    reg = Registry.load()
    names = list(reg.tables) if args.all else args.table
    written = render_tables(names, results=args.results, scale=args.scale, out=args.out, tolerance=args.tolerance,
                            registry=reg)
    for key, files in written.items():
        print(f"{key}: {files['md']}")
    return 0


def main(argv=None) -> int:
    """Run one subcommand. Bad input (options, files, folders, checkpoints) prints
    ``rankrepro <command>: error: <message>`` and returns 2 (argparse exits with 2 itself);
    anything else that goes wrong is a bug and keeps its traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "check", None) is not None:
        args.check(args)
    try:
        return args.handler(args)
    except RankReproError as err:
        print(f"rankrepro {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
