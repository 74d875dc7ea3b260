"""rankrepro.workflow: what the rules compute (hashes, batch, metric names, records, data checks)."""
from __future__ import annotations

import json
import sys
import re
from pathlib import Path

import pytest

from rankrepro import workflow as wf
from rankrepro.registry import REPO_ROOT, Experiment, Registry, RegistryError

README = REPO_ROOT / "README.md"


def experiment(**kw):
    base = dict(id="x", dataset="coco", gpus=4, images_per_gpu=4, checkpoint="epoch_12.pth", splits=("minival",),
                feeds=(), config="configs/atss/rs_atss_r50_fpn_1x_coco.py")
    base.update(kw)
    return Experiment(**base)


def test_config_hash_ignores_comments_and_formatting_not_values(tmp_path, monkeypatch):
    monkeypatch.setattr(wf, "REPO_ROOT", tmp_path)
    wf.config_hash.cache_clear()
    base = tmp_path / "base.py"
    base.write_text("lr = 0.01\n")
    child = tmp_path / "child.py"
    child.write_text("_base_ = ['./base.py', 'mmdet::atss/atss_r50_fpn_1x_coco.py']\nmodel = dict(a=1)\n")
    first = wf.config_hash("child.py")
    wf.config_hash.cache_clear()
    child.write_text('"""A docstring."""\n# Feeds: Table 2\n_base_ = [\n  "./base.py", "mmdet::atss/atss_r50_fpn_1x_coco.py"]\n'
                     "model = dict( a = 1 )  # comment\n")
    assert wf.config_hash("child.py") == first
    wf.config_hash.cache_clear()
    base.write_text("lr = 0.02\n")  # a value in a project base changes the hash
    assert wf.config_hash("child.py") != first
    wf.config_hash.cache_clear()


def test_accumulation_keeps_the_published_batch():
    exp = experiment(gpus=8, images_per_gpu=2)
    assert [wf.accumulation(exp, g) for g in (8, 4, 2, 1)] == [1, 2, 4, 8]
    with pytest.raises(wf.WorkflowInputError, match="3 GPUs cannot keep that batch of 16"):
        wf.accumulation(exp, 3)
    with pytest.raises(wf.WorkflowInputError, match="16 GPUs cannot keep"):
        wf.accumulation(exp, 16)


def test_metric_names_follow_the_published_vocabulary():
    import csv

    raw = {"coco/bbox_mAP": 0.4, "coco/bbox_mAP_50": 0.6, "coco/bbox_mAP_s": 0.2, "coco/bbox_oLRP": 0.68,
           "coco/bbox_oLRP_FN": 0.3, "coco/segm_mAP": 0.35, "coco/segm_oLRP_Loc": 0.15,
           "coco/bbox_mAP_copypaste": "0.4 0.6", "coco/bbox_AP_person": 0.5}
    assert wf.published_metric_names(raw) == {
        "AP": 0.4, "AP50": 0.6, "APs": 0.2, "oLRP": 0.68, "oLRP_FN": 0.3, "mask_AP": 0.35, "mask_oLRP_Loc": 0.15}
    assert wf.published_metric_names({"lvis/bbox_AP": 0.26, "lvis/segm_APr": 0.17}) == {"AP": 0.26, "mask_APr": 0.17}
    assert wf.published_metric_names({"cityscapes/mAP": 0.38, "cityscapes/AP50": 0.65}) == {
        "mask_AP": 0.38, "mask_AP50": 0.65}
    with open(REPO_ROOT / "configs/published/metrics.csv") as f:
        vocabulary = {row["metric"] for row in csv.DictReader(f)}
    for name in ("AP", "AP50", "APs", "oLRP", "oLRP_FN", "mask_AP", "mask_oLRP_Loc", "mask_APr", "mask_AP50",
                 "time_s_per_iter", "fps"):
        assert name in vocabulary, name


def test_train_record_reads_every_run_and_skips_the_first_window(tmp_path):
    work = tmp_path / "exp"
    for run, rows in (("20260101_000000", [(10, 9.0), (20, 0.5)]), ("20260101_010000", [(30, 0.7)])):
        (work / run / "vis_data").mkdir(parents=True)
        (work / run / "vis_data" / "scalars.json").write_text(
            "".join(json.dumps({"iter": i, "time": t, "loss": 1.0, "lr": 0.01}) + "\n" for i, t in rows)
            + json.dumps({"coco/bbox_mAP": 0.1, "step": 30}) + "\n")
    (work / "last_checkpoint").write_text(str(work / "iter_30.pth"))
    record = wf.train_record(experiment(), "smoke", str(work), 0)
    assert record["iterations"] == 30 and record["runs"] == 2
    assert record["time_s_per_iter"] == pytest.approx(0.6)  # (0.5 + 0.7) / 2, the 9.0 start-up window left out
    assert record["batch"]["published_total"] == 16
    assert record["provenance"]["config_hash"] and "torch" in record["provenance"]["versions"]
    assert record["imbalance"] == {}
    (work / "last_checkpoint").unlink()
    with pytest.raises(wf.WorkflowInputError, match="training did not finish"):
        wf.train_record(experiment(), "smoke", str(work), 0)


def test_imbalance_is_the_first_epoch_mean_of_what_the_heads_log(tmp_path):
    work = tmp_path / "exp"
    (work / "run" / "vis_data").mkdir(parents=True)
    rows = [(1, 1, 10.0, 700.0), (2, 1, 20.0, 704.0), (3, 2, 90.0, 1.0)]
    (work / "run" / "vis_data" / "scalars.json").write_text("".join(
        json.dumps({"epoch": e, "iter": i, "time": 0.5, "loss": 1.0, "neg_per_pos_rpn_tasks": rpn,
                    "neg_per_pos_rcnn_tasks": rcnn}) + "\n" for i, e, rpn, rcnn in rows))
    (work / "last_checkpoint").write_text(str(work / "epoch_2.pth"))
    record = wf.train_record(experiment(), "paper", str(work), 4)
    assert record["imbalance"] == {"neg_per_pos_rcnn_tasks": 702.0, "neg_per_pos_rpn_tasks": 15.0}
    (work / "train.json").write_text(json.dumps(record))
    (work / "raw.json").write_text(json.dumps({"metrics": {"coco/bbox_mAP": 0.39}}))
    metrics = wf.metrics_record(experiment(), "paper", str(work / "raw.json"), str(work / "train.json"))["metrics"]
    assert metrics["neg_per_pos_rpn_tasks"] == 15.0 and metrics["AP"] == 0.39
    from rankrepro.tables import unit

    assert unit("neg_per_pos_rpn_tasks") == "ratio" and unit("neg_per_pos_rpn_desired") == "other"


def test_verify_dataset_names_what_is_missing(tmp_path):
    with pytest.raises(wf.WorkflowInputError, match="is not a folder"):
        wf.verify_dataset("coco", str(tmp_path / "nope"))
    (tmp_path / "coco" / "annotations").mkdir(parents=True)
    (tmp_path / "coco" / "annotations" / "instances_train2017.json").write_text("{}")
    (tmp_path / "coco" / "annotations" / "instances_val2017.json").write_text("")
    (tmp_path / "coco" / "train2017").mkdir()
    (tmp_path / "coco" / "train2017" / "1.jpg").write_bytes(b"x")
    with pytest.raises(wf.WorkflowInputError) as err:
        wf.verify_dataset("coco", str(tmp_path))
    assert "instances_val2017.json: empty file" in str(err.value) and "val2017: missing folder" in str(err.value)
    (tmp_path / "coco" / "annotations" / "instances_val2017.json").write_text("{}")
    (tmp_path / "coco" / "val2017").mkdir()
    (tmp_path / "coco" / "val2017" / "2.jpg").write_bytes(b"x")
    assert wf.verify_dataset("coco", str(tmp_path))["files"]["coco/val2017/"] == "folder"


def test_table_names_as_users_write_them():
    reg = Registry.load()
    assert {wf.table_name(reg, n) for n in ("2", "table2", "rs_paper/2", "reproduce_table2")} == {"table2"}
    assert wf.table_name(reg, "A.11") == "tableA11"
    assert wf.table_name(reg, "brs_readme_atss") == "brs_readme_atss"
    with pytest.raises(RegistryError, match="unknown table 'A.99'"):
        wf.table_name(reg, "A.99")


def test_readme_lists_every_target_with_its_status():
    reg = Registry.load()
    text = README.read_text()
    listed = dict(re.findall(r"^\| `(reproduce_\w+)` \|[^|]*\|[^|]*\| (complete|needs [^|]*?) \|", text, re.MULTILINE))
    assert set(listed) == {t.target for t in reg.tables.values()}
    for table in reg.tables.values():
        missing = reg.unimplemented(table.key)
        if missing:
            assert listed[table.target].startswith(f"needs {len(missing)} of {len(reg.table_experiments(table.key))}")
        else:
            assert listed[table.target] == "complete", table.target


def test_run_on_gpus_gives_concurrent_jobs_distinct_devices(tmp_path):
    import os
    import subprocess
    import sys
    import time

    env = dict(os.environ, CUDA_VISIBLE_DEVICES="0,1,2,3", RANKREPRO_GPU_LOCKS=str(tmp_path / "locks"))
    child = ("import os, time; t = time.time(); time.sleep(2); "
             "print(os.environ['CUDA_VISIBLE_DEVICES'], t, time.time(), flush=True)")
    cmd = [sys.executable, "-m", "rankrepro.workflow", "run-on-gpus", "2", "--", sys.executable, "-c", child]
    jobs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    runs = []
    for job in jobs:
        devices, begin, end = job.communicate()[0].split()
        assert job.returncode == 0
        runs.append((set(devices.split(",")), float(begin), float(end)))
    assert all(len(d) == 2 and d <= {"0", "1", "2", "3"} for d, _, _ in runs)
    # jobs that ran at the same time held disjoint devices; not all three ran at once
    overlapping = [(a, b) for i, a in enumerate(runs) for b in runs[i + 1:] if a[1] < b[2] and b[1] < a[2]]
    assert overlapping and all(not (a[0] & b[0]) for a, b in overlapping)
    assert len(overlapping) < 3
    too_many = subprocess.run(cmd[:4] + ["5", "--", "true"], env=env, capture_output=True, text=True)
    assert too_many.returncode == 2 and "needs 5 GPU(s); this machine shows 4" in too_many.stderr


def test_a_work_dir_of_another_run_key_is_moved_aside_not_resumed(tmp_path):
    work = tmp_path / "exp"
    assert wf.prepare_work_dir(work, "key-a") is None and (work / "run_key").read_text().strip() == "key-a"
    (work / "iter_50.pth").write_bytes(b"checkpoint")
    assert wf.prepare_work_dir(work, "key-a") is None  # same key: resume in place
    assert (work / "iter_50.pth").exists()
    moved = wf.prepare_work_dir(work, "key-b")  # config, code or schedule changed: start from 0
    assert moved and (Path(moved) / "iter_50.pth").read_bytes() == b"checkpoint"
    assert not (work / "iter_50.pth").exists() and (work / "run_key").read_text().strip() == "key-b"
    legacy = tmp_path / "legacy"  # checkpoints without a key: unknown provenance, moved aside too
    legacy.mkdir()
    (legacy / "last_checkpoint").write_text("x")
    assert wf.prepare_work_dir(legacy, "key-a") is not None


def test_run_key_follows_config_code_and_schedule():
    exp = Registry.load().experiments["rs_atss_r50_fpn_1x_coco"]
    cfg = {"smoke": {"iters": 120}, "gpus": None}
    base = wf.run_key(exp, "smoke", cfg)
    assert wf.run_key(exp, "smoke", cfg) == base
    assert wf.run_key(exp, "smoke", {"smoke": {"iters": 200}, "gpus": None}) != base
    assert wf.run_key(exp, "paper", cfg) != wf.run_key(exp, "paper", {"smoke": {"iters": 120}, "gpus": 2})
    assert wf.run_key(Registry.load().experiments["brs_atss_r50_fpn_1x_coco"], "smoke", cfg) != base


def test_code_hash_ignores_docstrings_and_comments_not_code(tmp_path):
    first = tmp_path / "a.py"
    first.write_text('"""Module doc."""\ndef f(x):\n    """Doc."""\n    return x + 1  # comment\n')
    digest = wf._ast_digest
    old_root = wf.REPO_ROOT
    try:
        wf.REPO_ROOT = tmp_path
        one = digest([first])
        first.write_text('def f(x):\n    """Another doc."""\n    return x + 1\n')
        assert digest([first]) == one
        first.write_text("def f(x):\n    return x + 2\n")
        assert digest([first]) != one
    finally:
        wf.REPO_ROOT = old_root


def test_training_code_hash_covers_the_data_generator_not_the_downloads():
    """A change to the synthetic generator retrains the smoke models; the paper-scale download
    code beside it (src/rankrepro/data/) changes no smoke run and retrains nothing."""
    covered = [wf.REPO_ROOT / entry for entry in wf.TRAINING_CODE]
    generator = wf.REPO_ROOT / "src/rankrepro/data/synthetic.py"
    downloads = wf.REPO_ROOT / "src/rankrepro/data/download.py"
    assert any(generator == c or generator.is_relative_to(c) for c in covered)
    assert not any(downloads == c or downloads.is_relative_to(c) for c in covered)
    assert set(wf.DATA_CODE) <= set(wf.TRAINING_CODE)


def test_jobs_run_the_python_rankrepro_python_names(monkeypatch):
    """Inside the image (Snakemake's apptainer support) the jobs' Python is the image's:
    RANKREPRO_PYTHON replaces this interpreter in every command; unset, nothing changes."""
    exp = Registry.load().experiments["rs_atss_r50_fpn_1x_coco"]
    cfg = {"smoke": {"iters": 120, "threads": 1}, "gpus": None}
    monkeypatch.delenv("RANKREPRO_PYTHON", raising=False)
    local = wf.train_command(exp, "smoke", "work_dirs/smoke", "data/synthetic", cfg, 1)
    assert sys.executable in local
    monkeypatch.setenv("RANKREPRO_PYTHON", "/opt/venv/bin/python")
    inside = wf.train_command(exp, "smoke", "work_dirs/smoke", "data/synthetic", cfg, 1)
    assert sys.executable not in inside and inside == local.replace(sys.executable, "/opt/venv/bin/python")
    paper = wf.train_command(exp, "paper", "work_dirs/paper", "/data", {"gpus": None}, 16)
    assert "/opt/venv/bin/python -m torch.distributed.run" in paper


def test_provenance_takes_the_images_commit_without_git(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on PATH, as in the image
    monkeypatch.setenv("RANKREPRO_GIT_COMMIT", "0123abc")
    record = wf.provenance(None)
    assert record["git_commit"] == "0123abc" and record["git_dirty"] is None
    monkeypatch.delenv("RANKREPRO_GIT_COMMIT")
    assert wf.provenance(None)["git_commit"] is None
