"""The workflow end to end at smoke scale on a small complete table: trains, tests, renders;
a second run does nothing; a run killed during training resumes from its checkpoint."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from rankrepro.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
TARGET = "reproduce_rs_readme_one_stage"  # RS-ATSS and RS-PAA


def snakemake_args(configfile, *args):
    # targets and flags first: --configfile takes every word that follows it
    return [sys.executable, "-m", "snakemake", *args, "--cores", "2", "--configfile", str(configfile)]


@pytest.fixture(scope="module")
def run_config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("workflow")
    config = {
        "scale": "smoke",
        "results": str(tmp / "results"),
        "work_dirs": str(tmp / "work_dirs"),
        "smoke": {"data": str(tmp / "data"), "iters": 12, "checkpoint_interval": 4, "threads": 1},
        "tolerance": 0.3,
        "partial": False,
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, config


def test_smoke_table_end_to_end_then_nothing_to_do_then_resume(run_config):
    configfile, config = run_config
    proc = subprocess.run(snakemake_args(configfile, TARGET), cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]

    reg = Registry.load()
    experiments = reg.table_experiments("rs_readme/one_stage")
    results = Path(config["results"]) / "smoke"
    for exp in experiments:
        record = json.loads((results / "metrics" / f"{exp}.json").read_text())
        assert record["experiment"] == exp and record["scale"] == "smoke"
        assert 0.0 <= record["metrics"]["AP"] <= 1.0 and 0.0 <= record["metrics"]["oLRP"] <= 1.0
        assert record["metrics"]["time_s_per_iter"] > 0 and record["metrics"]["fps"] > 0
        assert record["train"]["iterations"] == 12
        assert record["train"]["provenance"]["config_hash"]
    table = (results / "tables" / "rs_readme_one_stage.md").read_text()
    assert "SMOKE SCALE" in table and "status: **complete**" in table
    for ext in ("csv", "tex", "html", "png", "pdf", "json"):
        assert (results / "tables" / f"rs_readme_one_stage.{ext}").stat().st_size > 0
    assert "rs_readme_one_stage.md" in (Path(config["results"]) / "README.md").read_text()

    # the Snakemake report holds the regenerated table and its plot
    report = Path(config["results"]) / "report.html"
    made = subprocess.run(snakemake_args(configfile, TARGET, "--report", str(report)), cwd=ROOT, capture_output=True,
                          text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    text = report.read_text()
    assert "rs_readme_one_stage.png" in text and "rs_readme_one_stage.html" in text

    # a second run has nothing to do
    again = subprocess.run(snakemake_args(configfile, "-n", TARGET), cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stdout[-2000:]

    # kill the workflow during one model's training, then re-run: it resumes from the checkpoint
    exp = experiments[0]
    work = Path(config["work_dirs"]) / "smoke" / exp
    # as if the first run had been interrupted in this model's training: no record, no table
    subprocess.run(["rm", "-rf", str(work)], check=True)
    (results / "metrics" / f"{exp}.json").unlink()
    for path in (results / "tables").glob("rs_readme_one_stage.*"):
        path.unlink()
    job = subprocess.Popen(snakemake_args(configfile, TARGET), cwd=ROOT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    try:
        while time.time() < deadline and not (work / "iter_4.pth").exists():
            assert job.poll() is None, "the workflow finished before the first checkpoint"
            time.sleep(0.2)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    assert (work / "iter_4.pth").exists() and not (work / "train.json").exists()
    saved = max(int(p.stem.split("_")[1]) for p in work.glob("iter_*.pth"))
    assert saved < 12

    subprocess.run([sys.executable, "-m", "snakemake", TARGET, "--unlock", "--configfile", str(configfile)],
                   cwd=ROOT, capture_output=True, check=True)
    proc = subprocess.run(snakemake_args(configfile, TARGET), cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = (work / "train.log").read_text()
    resumed = re.findall(r"resumed epoch: \d+, iter: (\d+)", log)
    assert resumed and int(resumed[-1]) == saved, log[-3000:]  # the newest complete checkpoint
    record = json.loads((work / "train.json").read_text())
    assert record["iterations"] == 12 and record["runs"] == 2
    assert (results / "metrics" / f"{exp}.json").exists()
