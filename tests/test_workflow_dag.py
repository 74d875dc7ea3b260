"""The Snakemake workflow's DAGs against the registry (dry-runs at paper scale with a fake data
root), the config schema's errors, and the workflow's lint and format checks."""
from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rankrepro.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
TRAIN_JOB = re.compile(r"^rule train:\n(?:[ \t]+.*\n)*?[ \t]+wildcards: exp=(\S+)", re.MULTILINE)


def snakemake(*args, cwd=ROOT, timeout=600):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def paper_dry_run(target, data_root, *config):
    proc = snakemake("-n", target, "--config", "scale=paper", f"data_root={data_root}", *config)
    return proc, TRAIN_JOB.findall(proc.stdout)


@pytest.fixture(scope="module")
def fake_data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("data_root")


def test_every_target_dry_runs_with_exactly_its_experiments(fake_data_root):
    reg = Registry.load()
    tables = list(reg.tables.values())
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda t: paper_dry_run(t.target, fake_data_root), tables))
    problems = []
    for table, (proc, trained) in zip(tables, runs):
        needed = reg.table_experiments(table.key)
        missing = reg.unimplemented(table.key)
        if missing:
            # a clear error at DAG-building time naming every missing experiment, no jobs
            text = proc.stdout + proc.stderr
            if proc.returncode == 0 or not all(e in text for e in missing) or "not implemented yet" not in text:
                problems.append(f"{table.target}: expected an error naming {missing}, got rc {proc.returncode}")
        elif proc.returncode != 0:
            problems.append(f"{table.target}: dry-run failed:\n{proc.stderr[-2000:]}")
        elif sorted(trained) != sorted(needed):
            problems.append(f"{table.target}: trains {sorted(trained)}, the registry says {sorted(needed)}")
    assert not problems, "\n".join(problems)
    assert any(not reg.unimplemented(t.key) for t in tables)  # at least one complete table


def test_reproduce_all_trains_each_model_once(fake_data_root):
    reg = Registry.load()
    proc, trained = paper_dry_run("reproduce_all", fake_data_root, "partial=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = Counter(trained)
    assert counts and max(counts.values()) == 1
    needed = {e for key in reg.tables for e in reg.table_experiments(key) if reg.experiments[e].implemented}
    assert set(counts) == needed


def test_fewer_gpus_keep_the_published_batch_by_accumulation(fake_data_root):
    proc = snakemake("-n", "-p", "reproduce_brs_readme_atss", "--config", "scale=paper", f"data_root={fake_data_root}",
                     "gpus=2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # RS-ATSS: published 4 GPUs x 4 images -> 2 GPUs accumulate 2 batches
    assert re.search(r"--nproc_per_node 2 -m rankrepro.cli train configs/atss/rs_atss_r50_fpn_1x_coco.py .*"
                     r"optim_wrapper.accumulative_counts=2", proc.stdout)
    proc = snakemake("-n", "reproduce_brs_readme_atss", "--config", "scale=paper", f"data_root={fake_data_root}", "gpus=3")
    assert proc.returncode != 0 and "cannot keep that batch of 16" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "config, message",
    [
        (["scale=huge"], "'huge' is not one of ['smoke', 'paper']"),
        (["scale=paper"], "'data_root' is a required property"),
        (["scale=paper", "data_root=/nonexistent/rankrepro"], "data_root '/nonexistent/rankrepro' is not a folder"),
        (["tables=[99]"], "unknown table '99'; known tables:"),
        (["tolerance=-1"], "Error validating config file"),
    ],
)
def test_config_errors_are_clear(config, message):
    target = "reproduce" if any(c.startswith("tables=") for c in config) else "reproduce_table2"
    proc = snakemake("-n", target, "--config", *config)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


def test_generic_target_takes_table_names(fake_data_root):
    proc = snakemake("-n", "reproduce", "--config", "scale=paper", f"data_root={fake_data_root}",
                     "tables=[brs_readme_atss, 'A.16']")
    assert proc.returncode == 0, proc.stderr[-2000:]
    reg = Registry.load()
    expected = reg.table_experiments("brs_readme/atss") + reg.table_experiments("rs_paper/A.16")
    assert sorted(TRAIN_JOB.findall(proc.stdout)) == sorted(set(expected))


def test_lint_and_format():
    lint = snakemake("--lint", "--config", "partial=true")
    text = lint.stdout + lint.stderr
    lints = set(re.findall(r"^\s+\* (.+)$", text, re.MULTILINE))
    # No lint at all: the Snakefile's global `container:` (the Docker image, docker/) gives
    # every rule its software; every other lint (parameters outside params, ...) is fixed.
    assert lints == set(), text[-3000:]
    assert "Congratulations" in text, text[-3000:]
    files = ["Snakefile", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "workflow" / "rules").glob("*.smk"))]
    fmt = subprocess.run([sys.executable, "-m", "snakefmt", "--check", *files], cwd=ROOT, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_test_dev_tables_submit_their_server_rows(fake_data_root):
    """Paper scale: Table 3's COCO test-dev rows get one `rankrepro submit` job per model,
    after COCO test-dev is downloaded and verified; a minival table submits nothing."""
    from rankrepro import workflow as wf

    proc = snakemake("-n", "-p", "reproduce_table3", "--config", "scale=paper", f"data_root={fake_data_root}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = re.findall(r"^rule submit_test_dev:\n(?:[ \t]+.*\n)*?[ \t]+wildcards: exp=(\S+)", proc.stdout, re.MULTILINE)
    assert sorted(jobs) == wf.test_dev_experiments(Registry.load(), "rs_paper/3") and jobs
    assert "results/paper/data/coco_test_dev.verified.json" in proc.stdout
    assert re.search(r"run-on-gpus 1 -- .*rankrepro.cli submit configs/\S+ work_dirs/paper/\S+/epoch_36.pth "
                     r"--experiment \S+ --data-root", proc.stdout)
    proc = snakemake("-n", "reproduce_brs_readme_atss", "--config", "scale=paper", f"data_root={fake_data_root}")
    assert proc.returncode == 0 and "submit_test_dev" not in proc.stdout
