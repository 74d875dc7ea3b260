"""Regenerated tables on hand-made metrics JSONs (tests/data/registry_small)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rankrepro.registry import Registry, RegistryError, target_name
from rankrepro.tables import compare, decimals, render_tables, to_markdown, unit
from rankrepro.tables.render import fmt_delta, long_frame

SMALL = Path(__file__).parent / "data" / "registry_small"


@pytest.fixture()
def reg():
    return Registry.load(str(SMALL))


def write_metrics(results: Path, scale: str, experiment: str, **metrics) -> None:
    path = results / scale / "metrics" / f"{experiment}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"experiment": experiment, "scale": scale, "metrics": metrics}))


def test_target_names():
    assert target_name("rs_paper/2") == "reproduce_table2"
    assert target_name("rs_paper/A.11") == "reproduce_tableA11"
    assert target_name("brs_readme/faster_rcnn") == "reproduce_brs_readme_faster_rcnn"
    with pytest.raises(RegistryError):
        target_name("table2")


def test_unknown_table_names_the_known_ones(reg):
    with pytest.raises(RegistryError, match="unknown table 'table99'.*table2, table3, table4, table5"):
        reg.table("table99")


def test_units_and_decimals():
    assert unit("AP") == unit("mask_APr") == unit("oLRP_FP") == "points"
    assert unit("time_s_per_iter") == "seconds" and unit("num_hyperparams") == "other"
    assert decimals("39.6") == 1 and decimals("0.58") == 2 and decimals("3") == 0
    assert fmt_delta(0.3, 1) == "+0.3" and fmt_delta(-0.2, 1) == "-0.2" and fmt_delta(-0.0, 1) == "0.0"
    assert fmt_delta(None, 1) == "—"


def test_paper_scale_comparison(reg, tmp_path):
    # fl_atss: AP 0.38749 -> 38.7 (delta 0.0), oLRP 0.6912 -> 69.1 (+0.2)
    write_metrics(tmp_path, "paper", "fl_atss", AP=0.38749, oLRP=0.6912)
    # rs_atss: AP 0.3952 -> 39.5 (-0.4: outside 0.3), oLRP 0.6760 -> 67.6 (-0.3)
    write_metrics(tmp_path, "paper", "rs_atss", AP=0.3952, oLRP=0.6760)
    # fl_paa has not run; rs_paa is not implemented; "other" is quoted
    comparison = compare(reg, "rs_paper/2", tmp_path, "paper", tolerance=0.3)
    rows = {(r["row_id"], r["group"]): r for r in comparison.rows}
    assert [(r["row_id"], r["group"]) for r in comparison.rows] == [
        ("fl", "ATSS"), ("fl", "PAA"), ("rs", "ATSS"), ("rs", "PAA"), ("other", "ATSS"), ("rs", "")]
    fl = rows["fl", "ATSS"]["cells"]
    assert fl["AP"]["reproduced"] == 38.7 and fl["AP"]["delta"] == 0.0
    assert fl["oLRP"]["reproduced"] == 69.1 and fl["oLRP"]["delta"] == pytest.approx(0.2)
    assert rows["fl", "ATSS"]["verdict"] == "within"
    assert rows["rs", "ATSS"]["cells"]["AP"]["delta"] == pytest.approx(-0.4)
    assert rows["rs", "ATSS"]["verdict"] == "outside"
    assert rows["rs", "ATSS"]["cells"]["num_hyperparams"]["reproduced"] is None  # not measured, not zero
    assert rows["fl", "PAA"]["verdict"] == "missing" and rows["fl", "PAA"]["cells"]["AP"]["reproduced"] is None
    assert rows["rs", "PAA"]["verdict"] == "not implemented"
    assert rows["other", "ATSS"]["verdict"] == "quoted"
    assert rows["rs", ""]["verdict"] == "published only"  # fed by no experiment, measured by no run
    summary = comparison.summary()
    assert summary["status"] == "partial" and summary["rows_trained"] == 4 and summary["rows_run"] == 2
    assert (summary["rows_compared"], summary["rows_within"]) == (2, 1)
    assert summary["mean_abs_delta"] == pytest.approx(0.2)
    claims = {c["text"]: c["holds"] for c in summary["claims"]}
    # RS-ATSS 39.5 > FL 38.7 and > the quoted 37.0 (published); oLRP 67.6 < 69.1; PAA runs missing
    assert claims == {"RS beats FL on ATSS": True, "lower oLRP": True, "needs missing runs": None}


def test_claim_that_fails(reg, tmp_path):
    write_metrics(tmp_path, "paper", "fl_atss", AP=0.40, oLRP=0.66)
    write_metrics(tmp_path, "paper", "rs_atss", AP=0.39, oLRP=0.67)
    claims = {c["text"]: c["holds"] for c in compare(reg, "rs_paper/2", tmp_path, "paper").summary()["claims"]}
    assert claims["RS beats FL on ATSS"] is False and claims["lower oLRP"] is False


def test_markdown_exact(reg, tmp_path):
    write_metrics(tmp_path, "paper", "fl_atss", AP=0.38749, oLRP=0.6912)
    write_metrics(tmp_path, "paper", "rs_atss", AP=0.3952, oLRP=0.6760)
    text = to_markdown(compare(reg, "rs_paper/2", tmp_path, "paper"))
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0] == ("| Row | AP pub. | AP rep. | AP Δ | oLRP pub. | oLRP rep. | oLRP Δ | num_hyperparams pub. "
                        "| num_hyperparams rep. | num_hyperparams Δ | Verdict | Experiment |")
    assert table[2:] == [
        "| ATSS · Focal Loss [21] | 38.7 | 38.7 | 0.0 | 68.9 | 69.1 | +0.2 |  |  |  | within | fl_atss |",
        "| PAA · Focal Loss [21] | 39.9 | — |  | 68.7 | — |  |  |  |  | missing | fl_paa |",
        "| ATSS · RS Loss (Ours) | 39.9 | 39.5 | -0.4 | 67.9 | 67.6 | -0.3 | 1 | n/a |  | outside | rs_atss |",
        "| PAA · RS Loss (Ours) | 41.0 | not impl. |  | 67.3 | not impl. |  |  |  |  | not implemented | rs_paa |",
        "| ATSS · Other \\| Loss [9] | 37.0 | quoted |  |  |  |  |  |  |  | quoted |  |",
        "| RS Loss (Ours) |  |  |  |  |  |  | 1 | n/a |  | published only |  |",
    ]
    assert "1 of 2 compared rows within tolerance; mean |Δ| = 0.20" in text
    assert "SMOKE" not in text


def test_smoke_scale_says_so_everywhere(reg, tmp_path):
    write_metrics(tmp_path, "smoke", "fl_atss", AP=0.05, oLRP=0.95)
    written = render_tables(["2"], results=str(tmp_path), scale="smoke", registry=reg)["rs_paper/2"]
    for ext in ("md", "tex", "html"):
        assert "NOT comparable" in written[ext].read_text() or "not comparable" in written[ext].read_text()
    csv = pd.read_csv(written["csv"], keep_default_na=False)
    assert set(csv["comparable_to_paper"]) == {False} and set(csv["scale"]) == {"smoke"}
    fl = csv[(csv.row_id == "fl") & (csv.group == "ATSS") & (csv.metric == "AP")].iloc[0]
    assert (fl["published"], fl["reproduced"], fl["delta"], fl["verdict"]) == (38.7, "5.0", "-33.7", "smoke")
    assert csv[(csv.row_id == "fl") & (csv.group == "PAA")]["reproduced"].tolist() == ["", ""]
    assert written["png"].stat().st_size > 1000 and written["pdf"].read_bytes().startswith(b"%PDF")
    assert "\\begin{table}" in written["tex"].read_text()
    summary_page = (tmp_path / "README.md").read_text()
    assert "[partial](smoke/tables/table2.md)" in summary_page
    assert "| `reproduce_table3` | rs_paper/3 | Table 3. test-dev. | not run | not run |" in summary_page


def test_test_dev_rows_need_the_server_at_paper_scale(reg, tmp_path):
    write_metrics(tmp_path, "paper", "rs_rcnn", AP=0.48, AP50=0.68)
    row = compare(reg, "rs_paper/3", tmp_path, "paper").rows[0]
    assert row["verdict"] == "needs server" and row["cells"]["AP"]["reproduced"] is None
    row = compare(reg, "rs_paper/3", tmp_path, "smoke").rows[0]
    assert row["verdict"] == "missing"


def test_every_registered_table_renders_with_all_runs_missing(tmp_path):
    reg = Registry.load()
    written = render_tables(list(reg.tables), results=str(tmp_path), scale="paper", registry=reg)
    assert set(written) == set(reg.tables)
    for key, files in written.items():
        frame = long_frame(compare(reg, key, tmp_path, "paper"))
        assert (frame["reproduced"] == "").all()
        assert set(frame["verdict"]) <= {"missing", "quoted", "not implemented", "needs server", "published only"}
        assert files["md"].read_text().count("\n|") >= 2


def test_rows_without_the_tables_ap_use_their_own(reg, tmp_path):
    write_metrics(tmp_path, "paper", "fl_atss", AP=0.401)
    write_metrics(tmp_path, "paper", "rs_atss", mask_AP=0.305)  # a mask-only row: verdict on mask AP
    write_metrics(tmp_path, "paper", "fl_paa", time_s_per_iter=0.61)
    rows = {r["row_id"]: r for r in compare(reg, "rs_paper/4", tmp_path, "paper").rows}
    assert (rows["box"]["primary"], rows["box"]["verdict"]) == ("AP", "within")
    assert (rows["seg"]["primary"], rows["seg"]["verdict"]) == ("mask_AP", "outside")
    assert rows["seg"]["cells"]["mask_AP"]["delta"] == pytest.approx(0.5)
    times = compare(reg, "rs_paper/5", tmp_path, "paper")
    assert times.rows[0]["verdict"] == "no AP" and times.rows[0]["cells"]["time_s_per_iter"]["reproduced"] == 0.61
    written = render_tables(["4", "5"], results=str(tmp_path), scale="paper", registry=reg)
    assert written["rs_paper/5"]["png"].stat().st_size > 1000


def test_latex_is_escaped(reg, tmp_path):
    import re

    write_metrics(tmp_path, "smoke", "rs_atss", mask_AP=0.2)
    tex = render_tables(["4"], results=str(tmp_path), scale="smoke", registry=reg)["rs_paper/4"]["tex"].read_text()
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    assert "Seg\\_row \\& 50\\%" in body and "rs\\_paper/4" in body and "mask\\_AP" in body
    stripped = re.sub(r"\$[^$]*\$", "", body)  # outside math: no unescaped _ % #
    assert not re.search(r"(?<!\\)[_%#]", stripped)
