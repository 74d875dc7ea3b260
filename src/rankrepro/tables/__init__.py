"""Regenerated tables: published vs reproduced, with Δ, verdicts, summaries and plots.

``rankrepro tables --table 2 --results results`` (or ``--all``) renders
``results/<scale>/tables/<name>.{md,csv,tex,png,pdf,json}`` from the workflow's metrics JSONs
and refreshes ``results/README.md``; the workflow's table rules call the same code.
"""
from .compare import Comparison, compare, decimals, lower_is_better, unit
from .render import long_frame, to_latex, to_markdown, wide_frame, write_summary_page, write_table

__all__ = ["Comparison", "compare", "decimals", "lower_is_better", "unit", "long_frame", "to_latex", "to_markdown",
           "wide_frame", "write_summary_page", "write_table", "render_tables"]


def render_tables(names, results="results", scale="smoke", out=None, tolerance=0.3, registry=None):
    """Render the named tables (keys, targets or short names); returns {table key: files}."""
    from ..registry import Registry
    from ..workflow import table_name

    reg = registry or Registry.load()
    out_dir = out or f"{results}/{scale}/tables"
    written = {}
    for name in names:
        table = reg.table("reproduce_" + table_name(reg, name))
        written[table.key] = write_table(compare(reg, table.key, results, scale, tolerance), out_dir)
    write_summary_page(reg, results)
    return written
