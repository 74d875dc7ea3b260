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
)

FULL_M = [10_000, 100_000, 1_000_000]
FULL_P = [10, 100, 1000]
QUICK_M = [10_000, 100_000]
QUICK_P = [10, 100]
SLOW_ORACLE_S = 2.0

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
    return dict(device=device, threads=threads, loss=loss, M=M, P=P, impl=impl,
                repeats=len(times), median_s=statistics.median(times), min_s=min(times),
                peak_mem_bytes=peak, **extra)


def time_oracle(timer: Timer, fn, oracle_repeats: int | None) -> list[float]:
    if oracle_repeats is not None:
        return timer.repeat(fn, oracle_repeats, warmup=1)
    first = timer.once(fn)
    if first > SLOW_ORACLE_S:
        return [first]
    return timer.repeat(fn, 3, warmup=0)


def run_benchmark(args) -> "pd.DataFrame":  # noqa: F821
    import pandas as pd

    device = torch.device(args.device)
    timer = Timer(device)
    n_all = torch.get_num_threads()
    settings = {"1": [1], "all": [n_all], "both": [1] if n_all == 1 else [1, n_all]}[args.threads]
    data = {(M, P): make_data(M, P, args.seed) for M in args.M for P in args.P}
    rows = []
    oracle_values = {}
    for n in settings:
        torch.set_num_threads(n)
        for M in args.M:
            s = data[(M, args.P[0])][0].to(device)
            fn = lambda: torch.sort(s, descending=True)  # noqa: E731
            times = timer.repeat(fn, args.repeats)
            rows.append(row(device.type, n, "-", M, 0, "torch.sort", times, timer.peak_bytes(fn)))
            log(f"[threads={n}] torch.sort M={M:.0e}: {rows[-1]['median_s']:.4g} s")
        for (M, P), (s_cpu, y_cpu, loc_cpu) in data.items():
            y = y_cpu.to(device)
            for name, (ours, oracle) in LOSSES.items():
                s = s_cpu.to(device).requires_grad_(True)
                loc = loc_cpu.to(device).requires_grad_(True)

                def step():
                    s.grad = None
                    loc.grad = None
                    sum(ours(s, y, loc)).backward()

                times = timer.repeat(step, args.repeats)
                peak = timer.peak_bytes(step)
                with torch.no_grad():
                    values = [float(v) for v in ours(s, y, loc)]
                rows.append(row(device.type, n, name, M, P, "ours", times, peak,
                                _values=values))
                msg = f"[threads={n}] {name:4s} M={M:.0e} P={P:<5d} ours {rows[-1]['median_s']:.4g} s"
                if n == 1 and not args.no_oracle:
                    ofn = lambda: oracle_values.__setitem__((name, M, P), oracle(s_cpu, y_cpu, loc_cpu))  # noqa: E731
                    otimes = time_oracle(Timer(torch.device("cpu")), ofn, args.oracle_repeats)
                    diff = max(abs(a - b) for a, b in zip(values, oracle_values[(name, M, P)]))
                    rows.append(row("cpu", n, name, M, P, "oracle", otimes, None,
                                    value_absdiff=diff))
                    msg += f" | oracle {rows[-1]['median_s']:.4g} s x{len(otimes)} (|dvalue| {diff:.1e})"
                log(msg)
    torch.set_num_threads(n_all)

    df = pd.DataFrame(rows).drop(columns="_values", errors="ignore")
    df["peak_mem_bytes"] = df["peak_mem_bytes"].astype("Int64")
    sort_t = df[df.impl == "torch.sort"].set_index(["threads", "M"])["median_s"]
    df["ratio_to_sort"] = [
        r.median_s / sort_t.get((r.threads, r.M), float("nan")) for r in df.itertuples()
    ]
    oracle_t = df[df.impl == "oracle"].set_index(["loss", "M", "P"])["median_s"]
    df["speedup_vs_oracle"] = [
        oracle_t.get((r.loss, r.M, r.P), float("nan")) / r.median_s if r.impl == "ours" else float("nan")
        for r in df.itertuples()
    ]
    if "value_absdiff" not in df:
        df["value_absdiff"] = float("nan")
    cols = ["device", "threads", "loss", "M", "P", "impl", "repeats", "median_s", "min_s",
            "peak_mem_bytes", "ratio_to_sort", "speedup_vs_oracle", "value_absdiff"]
    return df[cols]


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


def print_table(df) -> None:
    M = df.M.max()
    ours = df[(df.impl == "ours") & (df.M == M)]
    srt = df[(df.impl == "torch.sort") & (df.M == M)].set_index("threads")["median_s"]
    orc = df[(df.impl == "oracle") & (df.M == M)].set_index(["loss", "P"])["median_s"]
    threads = sorted(ours.threads.unique())
    head = f"{'loss':5s} {'P':>5s}"
    for n in threads:
        head += f" {'ours@' + str(n) + 't':>11s} {'/sort':>7s}"
    head += f" {'oracle@1t':>10s} {'speedup':>9s}"
    print(f"\nM = {M:.0e}; torch.sort: " + ", ".join(f"{srt[n]:.4g} s @{n}t" for n in threads))
    print(head)
    for (loss, P), g in ours.groupby(["loss", "P"], sort=False):
        g = g.set_index("threads")
        line = f"{loss:5s} {P:5d}"
        for n in threads:
            line += f" {g.median_s.get(n, float('nan')):11.4g} {g.ratio_to_sort.get(n, float('nan')):7.2f}"
        o = orc.get((loss, P), float("nan"))
        line += f" {o:10.4g} {o / g.median_s.get(1, float('nan')):9.1f}"
        print(line)


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
    ap.add_argument("--out-dir", type=Path, default=REPO / "results" / "benchmarks")
    args = ap.parse_args(argv)
    args.M = args.M or (QUICK_M if args.quick else FULL_M)
    args.P = args.P or (QUICK_P if args.quick else FULL_P)
    args.repeats = args.repeats or (3 if args.quick else 7)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but CUDA is not available")

    log(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"os.cpu_count()={os.cpu_count()}, torch threads at start={torch.get_num_threads()}, "
        f"loadavg={os.getloadavg()[0]:.2f}, device={args.device}")
    t0 = time.perf_counter()
    df = run_benchmark(args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"loss_speed_{args.device}" + ("_quick" if args.quick else "")
    csv = args.out_dir / f"{stem}.csv"
    png = args.out_dir / f"{stem}.png"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False, float_format="%.6g"))
    plot(df, png, f"rankrepro.losses forward+backward, {args.device}, torch {torch.__version__}")
    print_table(df)
    log(f"\nwrote {csv}\nwrote {png}\n({time.perf_counter() - t0:.0f} s total)")


if __name__ == "__main__":
    main()
