"""Render a comparison as Markdown, CSV, LaTeX and a plot, and the results summary page.

Files per table (``results/<scale>/tables/<name>.*``, ``name`` = the target without
``reproduce_``): ``.md`` (published | reproduced | Δ per metric, verdicts, the summary and
the paper's ordering claims), ``.csv`` (one line per row and metric, for machines), ``.tex``
(pandas ``Styler.to_latex``), ``.png`` / ``.pdf`` (published vs reproduced of the primary
metric per row, with the tolerance band).  A smoke-scale file says in the file itself
that its numbers come from synthetic data at toy scale and are not comparable.
"""
from __future__ import annotations

import fcntl
import json
from pathlib import Path

from ..atomic import write_atomic
from .compare import Comparison

SMOKE_BANNER = ("SMOKE SCALE: these reproduced numbers come from the synthetic dataset with tiny CPU models "
                "trained for a few hundred iterations. They test the pipeline; they are NOT comparable to the paper.")
MISSING = "—"
NOT_MEASURED = "n/a"


def fmt_delta(delta, places: int) -> str:
    if delta is None:
        return MISSING
    if round(delta, places) == 0:
        return f"{0:.{places}f}"
    return f"{delta:+.{places}f}"


def _reproduced_text(row: dict, cell: dict, metric: str) -> str:
    from .compare import unit

    if row["quoted"]:
        return "quoted"
    if row["verdict"] == "published only":
        return NOT_MEASURED
    if row["verdict"] == "not implemented":
        return "not impl."
    if row["verdict"] == "needs server":
        return "server"
    if not row["ran"]:
        return MISSING
    if unit(metric) == "other":
        return NOT_MEASURED
    if cell["reproduced"] is None:
        return MISSING
    return f"{cell['reproduced']:.{cell['decimals']}f}"


def row_label(row: dict) -> str:
    return f"{row['group']} · {row['row']}" if row["group"] else row["row"]


def wide_frame(comparison: Comparison):
    """One line per (row, group); per metric: published, reproduced, Δ (all as printed)."""
    import pandas as pd

    metrics = comparison.table.metrics
    records = []
    for row in comparison.rows:
        record = {"Row": row_label(row)}
        for metric in metrics:
            cell = row["cells"].get(metric)
            if cell is None:
                record[(metric, "pub.")] = record[(metric, "rep.")] = record[(metric, "Δ")] = ""
                continue
            record[(metric, "pub.")] = cell["printed"]
            record[(metric, "rep.")] = _reproduced_text(row, cell, metric)
            record[(metric, "Δ")] = fmt_delta(cell["delta"], cell["decimals"]) if cell["reproduced"] is not None else ""
        record["Verdict"] = row["verdict"]
        record["Experiment"] = row["experiment"] or ""
        records.append(record)
    columns = ["Row"] + [(m, k) for m in metrics for k in ("pub.", "rep.", "Δ")] + ["Verdict", "Experiment"]
    return pd.DataFrame(records, columns=columns)


def long_frame(comparison: Comparison):
    import pandas as pd

    records = []
    for row in comparison.rows:
        for metric, cell in row["cells"].items():
            records.append({
                "table": comparison.table.key, "row_id": row["row_id"], "row": row["row"], "group": row["group"],
                "experiment": row["experiment"] or "", "metric": metric, "published": cell["printed"],
                "reproduced": "" if cell["reproduced"] is None else f"{cell['reproduced']:.{cell['decimals']}f}",
                "delta": "" if cell["delta"] is None else fmt_delta(cell["delta"], cell["decimals"]),
                "verdict": row["verdict"], "split": row["split"], "quoted": row["quoted"], "scale": comparison.scale,
                "comparable_to_paper": comparison.scale == "paper",
            })
    return pd.DataFrame(records)


def _md_table(header: list[str], lines: list[list[str]]) -> str:
    def esc(text) -> str:
        return str(text).replace("|", "\\|")

    out = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(esc(c) for c in line) + " |" for line in lines]
    return "\n".join(out)


def _notes(comparison: Comparison, summary: dict) -> tuple:
    """The text under a table: the legend, the paper-scale summary line (or None) and one
    line per ordering claim (Markdown and HTML show the same)."""
    legend = ("pub. = published (as printed), rep. = reproduced (same units and decimals), Δ = rep. − pub.; "
              f"{MISSING} = the run has not produced metrics yet; {NOT_MEASURED} = not measured by the workflow; "
              "quoted = other work's number, compared, never trained; server = COCO test-dev, scored by COCO's "
              "evaluation server: upload the workflow's test-dev/<experiment>.bbox.zip (.segm.zip for masks) from "
              "the results folder.")
    line = None
    if comparison.scale == "paper" and summary["primary_metric"]:
        mean = summary["mean_abs_delta"]
        line = (f"**Summary** ({summary['primary_metric']}, tolerance ±{summary['tolerance']} points): "
                f"{summary['rows_within']} of {summary['rows_compared']} compared rows within tolerance; "
                f"mean |Δ| = {'n/a' if mean is None else f'{mean:.2f}'}.")
    claims = []
    for claim in summary["claims"]:
        verdict = {True: "holds", False: "does NOT hold", None: "undetermined (runs missing)"}[claim["holds"]]
        claims.append(f"- {claim['metric']}: {claim['better']} better than {', '.join(claim['than'])}: **{verdict}**"
                      + (f" — “{claim['text']}”" if claim["text"] else ""))
    return legend, line, claims


def to_markdown(comparison: Comparison) -> str:
    frame = wide_frame(comparison)
    summary = comparison.summary()
    table = comparison.table
    header = ["Row"] + [f"{m} {k}" for m in table.metrics for k in ("pub.", "rep.", "Δ")] + ["Verdict", "Experiment"]
    lines = [[str(v) for v in rec] for rec in frame.itertuples(index=False)]
    legend, summary_line, claims = _notes(comparison, summary)
    parts = [f"# {table.target}: {table.key}", "", f"*{table.title}*", ""]
    if comparison.scale != "paper":
        parts += [f"> **{SMOKE_BANNER}**", ""]
    parts += [
        f"Scale: **{comparison.scale}** · status: **{summary['status']}** "
        f"({summary['rows_run']} of {summary['rows_trained']} trained rows run; "
        f"{sum(r['quoted'] for r in comparison.rows)} quoted) "
        f"· published split: {table.split}",
        "",
        _md_table(header, lines),
        "",
        legend,
        "",
    ]
    if summary_line:
        parts += [summary_line, ""]
    if claims:
        parts += ["**The paper's ordering claims** (on the reproduced numbers):", "", *claims, ""]
    return "\n".join(parts)


def _two_level_frame(comparison: Comparison, drop=()):
    """:func:`wide_frame` with (metric, pub./rep./Δ) column levels, for pandas' Styler."""
    import pandas as pd

    frame = wide_frame(comparison).drop(columns=list(drop))
    frame.columns = pd.MultiIndex.from_tuples([c if isinstance(c, tuple) else (c, "") for c in frame.columns])
    return frame


def to_latex(comparison: Comparison) -> str:
    import pandas as pd

    frame = _two_level_frame(comparison, drop=["Experiment"])
    caption = f"{comparison.table.key}: published vs reproduced ({comparison.scale} scale)"
    if comparison.scale != "paper":
        caption = "SMOKE SCALE, not comparable to the paper. " + caption
    # every text through LaTeX escaping (labels hold _, &, %, #, Greek letters): pasteable into a paper
    frame = frame.map(lambda v: _latex_text(str(v)))
    frame.columns = pd.MultiIndex.from_tuples([(_latex_text(a), _latex_text(b)) for a, b in frame.columns])
    latex = frame.style.hide(axis="index").to_latex(caption=_latex_text(caption), hrules=True, multicol_align="c")
    banner = f"% {SMOKE_BANNER}\n" if comparison.scale != "paper" else ""
    return banner + latex


_LATEX_SYMBOLS = {"Δ": r"$\Delta$", "δ": r"$\delta$", "λ": r"$\lambda$", "ρ": r"$\rho$", "τ": r"$\tau$",
                  "·": r"$\cdot$", "—": "--", "–": "--", "±": r"$\pm$", "×": r"$\times$", "≤": r"$\leq$",
                  "↓": r"$\downarrow$", "↑": r"$\uparrow$", "✓": r"\checkmark{}"}


def _latex_text(text: str) -> str:
    """Escape LaTeX's special characters and write the Unicode symbols of the labels as math."""
    out = []
    for ch in text:
        if ch in "\\":
            out.append(r"\textbackslash{}")
        elif ch in "&%$#_{}":
            out.append("\\" + ch)
        elif ch == "~":
            out.append(r"\textasciitilde{}")
        elif ch == "^":
            out.append(r"\textasciicircum{}")
        else:
            out.append(_LATEX_SYMBOLS.get(ch, ch))
    return "".join(out)


def to_html(comparison: Comparison) -> str:
    """A standalone page (the Snakemake report embeds it): the banner, the table, the summary."""
    import html

    frame = _two_level_frame(comparison)
    verdict_colours = {"within": "#d9f2d9", "outside": "#f8d7d7", "missing": "#eeeeee", "smoke": "#fff3cd"}

    def shade(row):
        colour = verdict_colours.get(row[("Verdict", "")], "")
        return [f"background-color: {colour}" if colour else "" for _ in row]

    table_html = frame.style.apply(shade, axis=1).hide(axis="index").to_html()
    legend, summary_line, claims = _notes(comparison, comparison.summary())
    notes = [legend, *([summary_line] if summary_line else []), *claims]
    banner = f"<p style='color:#a00;font-weight:bold'>{html.escape(SMOKE_BANNER)}</p>" if comparison.scale != "paper" else ""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(comparison.table.target)}</title>"
            "<style>body{font-family:sans-serif} td,th{padding:2px 6px;font-size:13px}</style></head><body>"
            f"<h2>{html.escape(comparison.table.target)}: {html.escape(comparison.table.key)}</h2>"
            f"<p><i>{html.escape(comparison.table.title)}</i></p>{banner}{table_html}"
            + "".join(f"<p>{html.escape(line)}</p>" for line in notes) + "</body></html>\n")


def plot(comparison: Comparison, png: Path, pdf: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .compare import unit

    # per row its verdict metric (AP, or mask AP where the row has only that); a table without
    # any AP (A.19) plots its first column in its own unit, without a tolerance band
    fallback = comparison.table.metrics[0] if comparison.table.metrics else None
    picks = [(r, r["primary"] or (fallback if comparison.primary_metric is None else None)) for r in comparison.rows]
    picks = [(r, m) for r, m in picks if m is not None and m in r["cells"]]
    rows = [r for r, _ in picks]
    metrics = [m for _, m in picks]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(rows) + 2), 4.2))
    xs = list(range(len(rows)))
    published = [r["cells"][m]["published"] for r, m in picks]
    reproduced = [r["cells"][m]["reproduced"] for r, m in picks]
    tol = comparison.tolerance
    points = bool(metrics) and all(unit(m) == "points" for m in metrics)
    if points:
        ax.bar(xs, [2 * tol] * len(rows), bottom=[p - tol for p in published], width=0.6, color="0.85",
               label=f"published ± {tol}")
    ax.scatter(xs, published, marker="_", s=400, color="black", label="published", zorder=3)
    got = [(x, v) for x, v in zip(xs, reproduced) if v is not None]
    if got:
        ax.scatter([x for x, _ in got], [v for _, v in got], color="tab:red", zorder=4, label="reproduced")
    for x, (r, m) in zip(xs, picks):
        if r["quoted"]:
            ax.annotate("quoted", (x, r["cells"][m]["published"]), textcoords="offset points", xytext=(0, 8),
                        ha="center", fontsize=7, color="0.4")
    ax.set_xticks(xs)
    ax.set_xticklabels([row_label(r) + ("" if m == comparison.primary_metric else f" ({m})") for r, m in picks],
                       rotation=35, ha="right", fontsize=8)
    names = sorted(set(metrics), key=metrics.index)
    ax.set_ylabel(" / ".join(names) + (" (points)" if points else f" ({unit(names[0])})" if names else ""))
    title = f"{comparison.table.target} ({comparison.table.key}), {comparison.scale} scale"
    if comparison.scale != "paper":
        title += "\nSMOKE SCALE: synthetic data, not comparable to the paper"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    for path in (png, pdf):
        tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
        fig.savefig(tmp)
        tmp.replace(path)
    plt.close(fig)


def write_table(comparison: Comparison, out_dir: str | Path) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = comparison.table.target.removeprefix("reproduce_")
    paths = {ext: out_dir / f"{name}.{ext}" for ext in ("md", "csv", "tex", "html", "png", "pdf", "json")}
    write_atomic(paths["md"], to_markdown(comparison).encode())
    write_atomic(paths["csv"], long_frame(comparison).to_csv(index=False).encode())
    write_atomic(paths["tex"], to_latex(comparison).encode())
    write_atomic(paths["html"], to_html(comparison).encode())
    write_atomic(paths["json"], (json.dumps(comparison.summary(), indent=1) + "\n").encode())
    plot(comparison, paths["png"], paths["pdf"])
    return paths


def write_summary_page(reg, results: str | Path) -> Path:
    """``results/README.md``: every table with its status at each scale, linked."""
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    lock_path = results / ".summary.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lines = ["# Regenerated tables", "",
                 "Written by `rankrepro tables` (the workflow's table rules). Smoke-scale tables come from the synthetic "
                 "dataset at toy scale and are **not comparable** to the papers; paper-scale tables are.", "",
                 "| target | table | title | smoke | paper |", "|---|---|---|---|---|"]
        for table in reg.tables.values():
            name = table.target.removeprefix("reproduce_")
            cells = []
            for scale in ("smoke", "paper"):
                summary_path = results / scale / "tables" / f"{name}.json"
                if summary_path.is_file():
                    status = json.loads(summary_path.read_text())["status"]
                    cells.append(f"[{status}]({scale}/tables/{name}.md) ([plot]({scale}/tables/{name}.png))")
                else:
                    cells.append("not run")
            title = table.title if len(table.title) <= 70 else table.title[:67] + "..."
            lines.append(f"| `{table.target}` | {table.key} | {title.replace('|', '/')} | {cells[0]} | {cells[1]} |")
        path = results / "README.md"
        write_atomic(path, ("\n".join(lines) + "\n").encode())
    return path
