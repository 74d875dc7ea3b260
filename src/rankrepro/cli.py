"""The ``rankrepro`` command line."""
from __future__ import annotations

import argparse
import sys


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


def _run_options(parser) -> None:
    parser.add_argument("config", help="an mmdet config, e.g. configs/atss/rs_atss_r50_fpn_1x_coco.py")
    parser.add_argument("--work-dir", required=True, help="logs and checkpoints")
    parser.add_argument("--smoke", action="store_true", help="the CPU-sized variant on the synthetic dataset")
    parser.add_argument("--data-root", help="the synthetic dataset (with --smoke)")
    parser.add_argument("--max-iters", type=int, default=300, help="iterations of the smoke variant")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default=None, help="override config keys, key=value")
    parser.add_argument(
        "--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none",
        help="distributed launcher: 'pytorch' under torchrun (one process per GPU)",
    )


def _train(args) -> int:
    from .runner import train

    train(args.config, args.work_dir, resume=args.resume, smoke=args.smoke, data_root=args.data_root,
          max_iters=args.max_iters, cfg_options=args.cfg_options, launcher=args.launcher)
    return 0


def _test(args) -> int:
    from .runner import test

    metrics = test(args.config, args.checkpoint, args.work_dir, out=args.out, smoke=args.smoke,
                   data_root=args.data_root, max_iters=args.max_iters, cfg_options=args.cfg_options,
                   launcher=args.launcher)
    print(" ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
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

    data = commands.add_parser("make-data", help="generate the synthetic COCO-format dataset")
    data.add_argument("root", help="output folder")
    data.add_argument("--num-train", type=int, default=200)
    data.add_argument("--num-val", type=int, default=50)
    data.add_argument("--seed", type=int, default=0)
    data.set_defaults(handler=_make_data)

    tr = commands.add_parser("train", help="train an mmdet config (mmengine Runner)")
    _run_options(tr)
    tr.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --work-dir")
    tr.set_defaults(handler=_train)

    te = commands.add_parser("test", help="evaluate a checkpoint; metrics JSON with --out")
    _run_options(te)
    te.add_argument("checkpoint")
    te.add_argument("--out", help="metrics JSON to write")
    te.set_defaults(handler=_test)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
