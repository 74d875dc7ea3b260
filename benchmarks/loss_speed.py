"""Speed (and peak memory) of the ranking-based losses in ``rankrepro.losses``.

What it measures, for every grid point (M logits, P positives) and every loss
(RS, BRS, AP, BAP, aLRP):

* ``ours``: one forward + backward of the ``rankrepro.losses`` function (the returned
  terms are summed and ``.backward()`` is called; aLRP's ``loc_errors`` also require
  grad).  Median / min over ``--repeats`` runs after one warm-up run.
* ``oracle``: the slow reference in ``tests/loss_oracles.py`` (one Python loop over
  the positives, values and gradients in one call, cost like the official code).
  Only with one thread.  Repeats: ``--oracle-repeats`` if given (after one warm-up);
  otherwise adaptive: the first call is timed; if it took > 2 s that single call is
  the measurement (repeats = 1), else it is treated as warm-up and 3 more calls are
  timed.  The repeat count used is in the CSV.  On ``--device cuda`` the oracle still
  runs on CPU (it is CPU/float64 code); its rows say ``device=cpu``.
* ``torch.sort``: one descending ``torch.sort`` of the same logits (no grad), the
  yardstick: every row's ``ratio_to_sort`` is ``median_s`` / the sort's median at the
  same M, device and thread setting.  ``speedup_vs_oracle`` (ours rows) is the
  oracle's median / ours' median at the same loss, M, P.
* ``ours`` and ``compiled``: the same call with the passes over M eager or
  ``torch.compile``d (``rankrepro.losses.set_compiled``; ``--compiled off|on|both``);
  ``first_s`` is the time of the first (warm-up) call, for ``compiled`` rows the compile
  cost of any variant not compiled before in this process.
* ``speedup_vs_official`` (RS rows at the six points of issue 16): the best official
  implementation's time in units of one ``torch.sort`` (``OFFICIAL_SORTS``) divided by
  this row's ``ratio_to_sort``.
* thread scaling (full grid, or ``--scaling``): RS at M = 1e6, P = 20,000 on 1 and 2
  threads (issue 15 / 16: it once took 2.2 s on one thread and 26.5 s on two).

Data: float32 logits, negatives ~ N(-3, 1.5), P positives at random positions
~ N(-0.5, 1.5); targets of positives uniform in (0.05, 1] (continuous IoU labels for
RS/BRS, simply > 0 for AP/BAP/aLRP), 0 for negatives; aLRP loc_errors uniform [0, 1).
Fixed seed (``--seed``), one data set per (M, P).

Thread settings (``--threads``): ``1`` (``torch.set_num_threads(1)``), ``all`` (the
``torch.get_num_threads()`` value at start-up) or ``both``.

Peak memory (``peak_mem_bytes``): bytes allocated by torch during one extra run, above
what was allocated before it (the inputs are excluded; the .grad buffers created by the
run are included).  On CPU it is the maximum of the running sum of the allocation /
free records of a ``torch.profiler`` trace with ``profile_memory=True`` (torch tensor
memory only, not Python objects); on CUDA it is ``torch.cuda.max_memory_allocated()``
after ``reset_peak_memory_stats()`` minus ``memory_allocated()`` before the run.  Not
measured for the oracle (column empty).

Outputs (atomically written): ``<out-dir>/loss_speed_<device>[_quick].csv`` and a
log-log plot ``<out-dir>/loss_speed_<device>[_quick].png``; a compact table for the
largest M is printed at the end.

Run::

    .venv/bin/python benchmarks/loss_speed.py --quick          # smoke run, < 1 min
    .venv/bin/python benchmarks/loss_speed.py                  # full grid, minutes
    .venv/bin/python benchmarks/loss_speed.py --device cuda --no-oracle
    # many positives, 1 vs all threads (issue 15: RS was many times slower on 2 threads)
    .venv/bin/python benchmarks/loss_speed.py --M 1000000 --P 20000 --no-oracle --threads both
    # the README's table: RS at the six points of issue 16, eager and compiled, markdown
    .venv/bin/python benchmarks/loss_speed.py --issue16 --no-oracle --threads 1
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import loss_oracles  # noqa: E402

from rankrepro.losses import (  # noqa: E402
    alrp_loss,
    ap_loss,
    bucketed_ap_loss,
    bucketed_rank_sort_loss,
    rank_sort_loss,
    set_compiled,
)

FULL_M = [10_000, 100_000, 1_000_000]
FULL_P = [10, 100, 1000]
QUICK_M = [10_000, 100_000]
QUICK_P = [10, 100]
SLOW_ORACLE_S = 2.0
# The faster of the two official RS implementations (the RankSortLoss repository's
# per-positive loop and the Bucketed repository's BucketedRankSort) at these (M, P), in
# units of one torch.sort of the same logits, same run, one thread: the figures of issue 16
# ("Loss speed: x10 over the best official implementation", filed by a session of this
# project).  The official code is not run here (it needs the authors' mmdet 2.x trees).
OFFICIAL_SORTS = {
    (10_000, 10): 5.0,
    (10_000, 1000): 107.6,
    (100_000, 100): 2.6,
    (1_000_000, 10): 0.5,
    (1_000_000, 100): 1.4,
    (1_000_000, 1000): 3.4,
}
SCALING_POINT = (1_000_000, 20_000)

# name -> (ours(logits, targets, loc) -> tuple of terms, oracle(logits, targets, loc) -> values)
LOSSES = {
    "RS": (lambda s, y, loc: rank_sort_loss(s, y, delta=0.5),
           lambda s, y, loc: loss_oracles.rank_sort(s, y, 0.5)[0]),
    "BRS": (lambda s, y, loc: bucketed_rank_sort_loss(s, y, delta=0.5),
            lambda s, y, loc: loss_oracles.bucketed_rank_sort(s, y, 0.5)[0]),
    "AP": (lambda s, y, loc: (ap_loss(s, y, delta=1.0),),
           lambda s, y, loc: loss_oracles.ap(s, y, 1.0)[0]),
    "BAP": (lambda s, y, loc: (bucketed_ap_loss(s, y, delta=1.0),),
            lambda s, y, loc: loss_oracles.bucketed_ap(s, y, 1.0)[0]),
    "aLRP": (lambda s, y, loc: alrp_loss(s, y, loc, delta=1.0),
             lambda s, y, loc: loss_oracles.alrp(s, y, loc, 1.0)[0]),
}


def make_data(M: int, P: int, seed: int):
    g = torch.Generator().manual_seed(seed * 1_000_003 + M * 7 + P)
    logits = torch.randn(M, generator=g) * 1.5 - 3.0
    pos = torch.randperm(M, generator=g)[:P]
    logits[pos] = torch.randn(P, generator=g) * 1.5 - 0.5
    targets = torch.zeros(M)
    targets[pos] = 1.0 - 0.95 * torch.rand(P, generator=g)  # uniform in (0.05, 1]
    loc = torch.rand(P, generator=g)
    # loc_errors are ordered like the positives in the flattened logits
    loc = loc[torch.argsort(pos)]
    return logits.float(), targets, loc.float()


@contextmanager
def _quiet_stderr():
    """Silence fd 2 (kineto prints a start/stop line per profiler session from C++)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class Timer:
    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def once(self, fn) -> float:
        self.sync()
        t0 = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - t0

    def repeat(self, fn, repeats: int, warmup: int = 1) -> list[float]:
        for _ in range(warmup):
            self.once(fn)
        return [self.once(fn) for _ in range(repeats)]

    def peak_bytes(self, fn) -> int:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            fn()
            torch.cuda.synchronize()
            return int(torch.cuda.max_memory_allocated() - base)
        from torch.profiler import ProfilerActivity, profile

        with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        records = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
        records.sort(key=lambda e: e.start_ns())
        current = peak = 0
        for e in records:
            current += e.nbytes()
            peak = max(peak, current)
        return int(peak)


def row(device, threads, loss, M, P, impl, times, peak=None, **extra):
    """One CSV row; ``spread`` is (max - min) / median of the timed runs."""
    median = statistics.median(times)
    return dict(device=device, threads=threads, loss=loss, M=M, P=P, impl=impl,
                repeats=len(times), median_s=median, min_s=min(times),
                spread=(max(times) - min(times)) / median if median > 0 else float("nan"),
                peak_mem_bytes=peak, **extra)


def time_oracle(timer: Timer, fn, oracle_repeats: int | None) -> list[float]:
    if oracle_repeats is not None:
        return timer.repeat(fn, oracle_repeats, warmup=1)
    first = timer.once(fn)
    if first > SLOW_ORACLE_S:
        return [first]
    return timer.repeat(fn, 3, warmup=0)


def time_ours(timer: Timer, device, name, s_cpu, y_cpu, loc_cpu, repeats: int, compiled: bool):
    """(times, first call's time, peak bytes, values) of one loss, eager or compiled."""
    ours = LOSSES[name][0]
    y = y_cpu.to(device)
    s = s_cpu.to(device).requires_grad_(True)
    loc = loc_cpu.to(device).requires_grad_(True)

    def step():
        s.grad = None
        loc.grad = None
        sum(ours(s, y, loc)).backward()

    set_compiled(compiled)
    try:
        first = timer.once(step)
        times = timer.repeat(step, repeats, warmup=0)
        peak = timer.peak_bytes(step)
        with torch.no_grad():
            values = [float(v) for v in ours(s, y, loc)]
    finally:
        set_compiled(False)
    return times, first, peak, values


def run_benchmark(args) -> "pd.DataFrame":  # noqa: F821
    import pandas as pd

    device = torch.device(args.device)
    timer = Timer(device)
    n_all = torch.get_num_threads()
    settings = {"1": [1], "all": [n_all], "both": [1] if n_all == 1 else [1, n_all]}[args.threads]
    impls = {"off": [False], "on": [True], "both": [False, True]}[args.compiled]
    points = [(M, P) for M in args.M for P in args.P] if args.points is None else args.points
    data = {(M, P): make_data(M, P, args.seed) for M, P in points}
    rows = []
    oracle_values = {}
    for n in settings:
        torch.set_num_threads(n)
        for M in sorted({M for M, _ in points}):
            s = data[next(p for p in points if p[0] == M)][0].to(device)
            fn = lambda: torch.sort(s, descending=True)  # noqa: E731
            times = timer.repeat(fn, args.repeats)
            rows.append(row(device.type, n, "-", M, 0, "torch.sort", times, timer.peak_bytes(fn)))
            log(f"[threads={n}] torch.sort M={M:.0e}: {rows[-1]['median_s']:.4g} s")
        for (M, P), (s_cpu, y_cpu, loc_cpu) in data.items():
            for name in args.losses:
                msg = f"[threads={n}] {name:4s} M={M:.0e} P={P:<5d}"
                for compiled in impls:
                    times, first, peak, values = time_ours(timer, device, name, s_cpu, y_cpu, loc_cpu,
                                                           args.repeats, compiled)
                    impl = "compiled" if compiled else "ours"
                    rows.append(row(device.type, n, name, M, P, impl, times, peak, first_s=first,
                                    _values=values))
                    msg += f" {impl} {rows[-1]['median_s']:.4g} s (first {first:.3g} s)"
                if n == 1 and not args.no_oracle:
                    oracle = LOSSES[name][1]
                    ofn = lambda: oracle_values.__setitem__((name, M, P), oracle(s_cpu, y_cpu, loc_cpu))  # noqa: E731
                    otimes = time_oracle(Timer(torch.device("cpu")), ofn, args.oracle_repeats)
                    diff = max(abs(a - b) for a, b in zip(values, oracle_values[(name, M, P)]))
                    rows.append(row("cpu", n, name, M, P, "oracle", otimes, None,
                                    value_absdiff=diff))
                    msg += f" | oracle {rows[-1]['median_s']:.4g} s x{len(otimes)} (|dvalue| {diff:.1e})"
                log(msg)
    torch.set_num_threads(n_all)
    if args.scaling:
        rows += scaling_rows(args, device, timer, impls)

    df = pd.DataFrame(rows).drop(columns="_values", errors="ignore")
    df["peak_mem_bytes"] = df["peak_mem_bytes"].astype("Int64")
    sort_t = df[df.impl == "torch.sort"].groupby(["threads", "M"])["median_s"].first()
    df["ratio_to_sort"] = [
        r.median_s / sort_t.get((r.threads, r.M), float("nan")) for r in df.itertuples()
    ]
    oracle_t = df[df.impl == "oracle"].set_index(["loss", "M", "P"])["median_s"]
    df["speedup_vs_oracle"] = [
        oracle_t.get((r.loss, r.M, r.P), float("nan")) / r.median_s if r.impl in ("ours", "compiled")
        else float("nan")
        for r in df.itertuples()
    ]
    df["speedup_vs_official"] = [
        OFFICIAL_SORTS.get((r.M, r.P), float("nan")) / r.ratio_to_sort
        if r.loss == "RS" and r.impl in ("ours", "compiled") else float("nan")
        for r in df.itertuples()
    ]
    for col in ("value_absdiff", "first_s"):
        if col not in df:
            df[col] = float("nan")
    cols = ["device", "threads", "loss", "M", "P", "impl", "repeats", "median_s", "min_s", "spread",
            "first_s", "peak_mem_bytes", "ratio_to_sort", "speedup_vs_official", "speedup_vs_oracle",
            "value_absdiff"]
    return df[cols]


def scaling_rows(args, device, timer, impls) -> list:
    """RS at M = 1e6, P = 20,000 on one and on two threads (and their torch.sort)."""
    M, P = SCALING_POINT
    s_cpu, y_cpu, loc_cpu = make_data(M, P, args.seed)
    rows = []
    n_all = torch.get_num_threads()
    for n in (1, 2):
        torch.set_num_threads(n)
        s = s_cpu.to(device)
        fn = lambda: torch.sort(s, descending=True)  # noqa: E731
        rows.append(row(device.type, n, "-", M, 0, "torch.sort", timer.repeat(fn, 5)))
        for compiled in impls:
            times, first, _, _ = time_ours(timer, device, "RS", s_cpu, y_cpu, loc_cpu, 3, compiled)
            rows.append(row(device.type, n, "RS", M, P, "compiled" if compiled else "ours", times, None,
                            first_s=first))
            log(f"[threads={n}] RS M={M:.0e} P={P} {rows[-1]['impl']} {rows[-1]['median_s']:.4g} s")
    torch.set_num_threads(n_all)
    return rows


def log(msg: str) -> None:
    print(msg, flush=True)


def atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def plot(df, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    threads = sorted(df[df.impl == "ours"].threads.unique())
    fig, axes = plt.subplots(1, len(threads), figsize=(5.2 * len(threads) + 2.2, 4.6),
                             sharey=True, squeeze=False)
    losses = list(LOSSES)
    colors = dict(zip(losses, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    Ps = sorted(df[df.impl == "ours"].P.unique())
    styles = dict(zip(Ps, [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D")]))
    oracle = df[df.impl == "oracle"]
    for ax, n in zip(axes[0], threads):
        for (loss, P), g in oracle.groupby(["loss", "P"]):
            g = g.sort_values("M")
            ax.plot(g.M, g.median_s, color="0.6", lw=0.7, ls=styles[P][0], marker=styles[P][1], ms=2.5)
        sub = df[(df.threads == n) & (df.impl == "ours")]
        for (loss, P), g in sub.groupby(["loss", "P"]):
            g = g.sort_values("M")
            ax.plot(g.M, g.median_s, color=colors[loss], ls=styles[P][0], marker=styles[P][1], ms=4, lw=1.4)
        srt = df[(df.threads == n) & (df.impl == "torch.sort")].sort_values("M")
        ax.plot(srt.M, srt.median_s, color="k", ls="--", lw=2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("M (number of logits)")
        ax.set_title(f"{n} thread{'s' if n > 1 else ''}" + (" (oracle: 1 thread)" if n > 1 and len(oracle) else ""))
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("forward + backward time [s] (median)")
    handles = [Line2D([], [], color=colors[l], lw=2, label=l) for l in losses]
    handles += [Line2D([], [], color="0.3", ls=styles[P][0], marker=styles[P][1], label=f"P={P}") for P in Ps]
    handles += [Line2D([], [], color="k", ls="--", lw=2, label="torch.sort")]
    if len(oracle):
        handles += [Line2D([], [], color="0.6", lw=0.7, label="oracle (grey)")]
    fig.legend(handles=handles, loc="center right", frameon=False, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 2.0 / fig.get_figwidth(), 1))
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=130))
    plt.close(fig)


def _ms(x: float) -> str:
    return "" if x != x else (f"{x * 1e3:.3g}" if x < 10 else f"{x * 1e3:.0f}")


def _x(x: float) -> str:
    return "" if x != x else (f"{x:.3g}" if x < 100 else f"{x:.0f}")


def markdown_tables(df) -> str:
    """The README's tables: RS at the points of issue 16, every loss, the thread scaling."""
    out = []
    ours = df[df.impl.isin(["ours", "compiled"]) & (df.threads == 1)]
    srt = df[df.impl == "torch.sort"].groupby(["threads", "M"])["median_s"].first()
    rs = ours[(ours.loss == "RS") & (ours.P != SCALING_POINT[1])]
    if len(rs):
        out.append("| M | P | torch.sort [ms] | RS eager [ms] | /sort | RS compiled [ms] | /sort "
                   "| best official /sort | x official, eager | x official, compiled |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for (M, P), g in rs.groupby(["M", "P"]):
            g = g.set_index("impl")
            e = g.loc["ours"] if "ours" in g.index else None
            c = g.loc["compiled"] if "compiled" in g.index else None

            def cell(r, col):
                return float("nan") if r is None else r[col]

            spread = lambda r: "" if r is None else f" (±{50 * r['spread']:.0f} %)"  # noqa: E731
            out.append(
                f"| {M:.0e} | {P} | {_ms(srt.get((1, M), float('nan')))} "
                f"| {_ms(cell(e, 'median_s'))}{spread(e)} | {_x(cell(e, 'ratio_to_sort'))} "
                f"| {_ms(cell(c, 'median_s'))}{spread(c)} | {_x(cell(c, 'ratio_to_sort'))} "
                f"| {_x(OFFICIAL_SORTS.get((M, P), float('nan')))} "
                f"| {_x(cell(e, 'speedup_vs_official'))} | {_x(cell(c, 'speedup_vs_official'))} |"
            )
    others = ours[ours.P != SCALING_POINT[1]]
    if others.loss.nunique() > 1:
        out.append("")
        out.append("| loss | M | P | eager /sort | compiled /sort |")
        out.append("|---|---|---|---|---|")
        for (loss, M, P), g in others.groupby(["loss", "M", "P"], sort=False):
            g = g.set_index("impl")["ratio_to_sort"]
            out.append(f"| {loss} | {M:.0e} | {P} | {_x(g.get('ours', float('nan')))} "
                       f"| {_x(g.get('compiled', float('nan')))} |")
    scaling = df[(df.loss == "RS") & (df.P == SCALING_POINT[1]) & df.impl.isin(["ours", "compiled"])]
    if len(scaling):
        out.append("")
        out.append(f"| RS, M = {SCALING_POINT[0]:.0e}, P = {SCALING_POINT[1]} | threads | median [s] | /sort |")
        out.append("|---|---|---|---|")
        for r in scaling.itertuples():
            out.append(f"| {'compiled' if r.impl == 'compiled' else 'eager'} | {r.threads} "
                       f"| {r.median_s:.3g} | {_x(r.ratio_to_sort)} |")
    return "\n".join(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", choices=["1", "all", "both"], default="both")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per point (default 7; 3 with --quick)")
    ap.add_argument("--oracle-repeats", type=int, default=None,
                    help="timed oracle runs after one warm-up (default: adaptive, 1 if a run takes > 2 s, else 3)")
    ap.add_argument("--no-oracle", action="store_true", help="skip the slow reference oracle")
    ap.add_argument("--quick", action="store_true", help="small grid (M in 1e4,1e5; P in 10,100), 3 repeats")
    ap.add_argument("--M", type=int, nargs="+", default=None, help="override the M grid")
    ap.add_argument("--P", type=int, nargs="+", default=None, help="override the P grid")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compiled", choices=["off", "on", "both"], default="both",
                    help="time the losses with the passes over M eager, compiled or both (default)")
    ap.add_argument("--losses", nargs="+", choices=list(LOSSES), default=list(LOSSES))
    ap.add_argument("--issue16", action="store_true",
                    help="only the six (M, P) points of issue 16 (instead of the M x P grid)")
    ap.add_argument("--scaling", action="store_true",
                    help=f"add RS at M={SCALING_POINT[0]}, P={SCALING_POINT[1]} on 1 and 2 threads "
                         "(on by default for the full grid)")
    ap.add_argument("--out-dir", type=Path, default=REPO / "results" / "benchmarks")
    args = ap.parse_args(argv)
    full_grid = not (args.quick or args.issue16 or args.M or args.P)
    args.scaling = args.scaling or full_grid
    args.M = args.M or (QUICK_M if args.quick else FULL_M)
    args.P = args.P or (QUICK_P if args.quick else FULL_P)
    args.points = list(OFFICIAL_SORTS) if args.issue16 else None
    args.repeats = args.repeats or (3 if args.quick else 7)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but CUDA is not available")

    log(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"os.cpu_count()={os.cpu_count()}, torch threads at start={torch.get_num_threads()}, "
        f"loadavg={os.getloadavg()[0]:.2f}, device={args.device}")
    t0 = time.perf_counter()
    df = run_benchmark(args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"loss_speed_{args.device}" + ("_quick" if args.quick else "") + ("_issue16" if args.issue16 else "")
    csv = args.out_dir / f"{stem}.csv"
    png = args.out_dir / f"{stem}.png"
    md = args.out_dir / f"{stem}.md"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False, float_format="%.6g"))
    grid_rows = df[df.P != SCALING_POINT[1]]
    if (grid_rows.impl == "ours").any():
        plot(grid_rows, png, f"rankrepro.losses forward+backward, {args.device}, torch {torch.__version__}")
    tables = markdown_tables(df)
    atomic_write(md, lambda tmp: Path(tmp).write_text(tables + "\n"))
    print("\n" + tables)
    log(f"\nwrote {csv}\n" + (f"wrote {png}\n" if (grid_rows.impl == "ours").any() else "")
        + f"wrote {md}\n({time.perf_counter() - t0:.0f} s total)")


if __name__ == "__main__":
    main()
