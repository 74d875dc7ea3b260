"""The SLURM profile (workflow/profiles/slurm) and the paper-scale commands it runs.

* Without a cluster: the torchrun command of one training per SLURM job (one node, or
  several nodes with ``srun`` and a c10d rendezvous where ``gpus_per_node`` is below the
  job's GPUs), and the sbatch options snakemake-executor-plugin-slurm builds from the
  ``train`` rule's resources (its own ``get_submit_command`` / ``set_gres_string`` on the
  resources of a paper-scale dry run).
* With a cluster (marker ``slurm``; ``tools/slurm/start.sh`` starts a one-node SLURM here,
  ``make test-slurm`` runs both): SLURM accepts those options (``sbatch --test-only``), and a
  smoke table runs through the profile, every rule but the table as its own SLURM job.
  Skipped with the reason when ``sbatch`` is missing or no controller answers (failed
  instead under RANKREPRO_REQUIRE_SLURM=1, as ``make test-slurm`` sets); the smoke table is
  also ``slow`` (about 2 minutes), so ``make test`` (``-m "not slow"``) never runs it.
"""
from __future__ import annotations

import csv
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from rankrepro import workflow as wf
from rankrepro.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
# the cheapest complete table: one experiment (RS-YOLACT), smoke training in seconds
TARGET, TABLE, TABLE_KEY = "reproduce_rs_readme_yolact", "rs_readme_yolact", "rs_readme/yolact"
EXP = "rs_atss_r50_fpn_1x_coco"  # published on 4 GPUs (the unit tests' experiment)


@functools.lru_cache(maxsize=None)
def _cluster_reason() -> str | None:
    """Why the real-SLURM tests cannot run here, or None when a controller answers."""
    if shutil.which("sbatch") is None:
        return "no sbatch: SLURM is not installed (tools/slurm/start.sh installs and starts a one-node cluster)"
    proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        return f"no SLURM controller answers (sinfo: {proc.stderr.strip()[:200]}); run tools/slurm/start.sh"
    return None


@pytest.fixture
def cluster():
    """Skip without a cluster, or fail where one must be there (``make test-slurm`` sets
    RANKREPRO_REQUIRE_SLURM=1, so that CI's SLURM step cannot pass by skipping)."""
    reason = _cluster_reason()
    if reason is not None:
        if os.environ.get("RANKREPRO_REQUIRE_SLURM") == "1":
            pytest.fail(f"RANKREPRO_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def atss():
    return Registry.load().experiments[EXP]


def paper_cfg(**over):
    return {"gpus": None, "gpus_per_node": None, **over}


# -- commands -----------------------------------------------------------------------------

def test_one_node_training_is_standalone_torchrun(atss):
    assert atss.gpus == 4
    for cfg in (paper_cfg(), paper_cfg(gpus_per_node=4), paper_cfg(gpus_per_node=8)):
        assert wf.train_nodes(atss, "paper", cfg) == (1, 4)
        cmd = wf.train_command(atss, "paper", "w", "/data", cfg, 16)
        assert "run-on-gpus 4 -- " in cmd
        assert "-m torch.distributed.run --standalone --nproc_per_node 4 -m rankrepro.cli train" in cmd
        assert "srun" not in cmd and "--nnodes" not in cmd
        res = wf.slurm_train_resources(atss, "paper", cfg)
        assert res == {"nodes": None, "tasks": None, "tasks_per_gpu": 0, "cpus_per_task": None, "gres": None,
                       "mpi": None}
    # smoke scale: no SLURM-specific resources at all (the plugin's defaults: one task)
    assert set(wf.slurm_train_resources(atss, "smoke", paper_cfg()).values()) == {None}


def test_multi_node_training_is_srun_torchrun_with_rendezvous(atss):
    cfg = paper_cfg(gpus_per_node=2)
    assert wf.train_nodes(atss, "paper", cfg) == (2, 2)
    cmd = wf.train_command(atss, "paper", "w", "/data", cfg, 16)
    launcher = cmd.split(" && ", 1)[1]  # after prepare-work-dir
    assert launcher.startswith(': "${SLURM_JOB_ID:?')
    assert ("srun --nodes=2 --ntasks-per-node=1 --cpus-per-task=8 --gres=gpu:2 --kill-on-bad-exit=1 " in launcher)
    assert ("-m torch.distributed.run --nnodes 2 --nproc_per_node 2 --rdzv_backend c10d "
            f'--rdzv_endpoint "$(hostname)":{wf.RDZV_PORT} --rdzv_id "$SLURM_JOB_ID" -m rankrepro.cli train' in launcher)
    assert "--standalone" not in launcher and "run-on-gpus" not in launcher
    # the published batch: 4 GPUs in all, no accumulation
    assert "accumulative_counts" not in launcher
    assert wf.slurm_train_resources(atss, "paper", cfg) == {
        "nodes": 2, "tasks": 2, "tasks_per_gpu": 0, "cpus_per_task": 8, "gres": "gpu:2", "mpi": "srun"}
    # ceil(4 / 3) = 2 nodes of 2 GPUs each
    assert wf.train_nodes(atss, "paper", paper_cfg(gpus_per_node=3)) == (2, 2)
    # 4 GPUs on nodes of 1: 4 nodes x 1
    assert wf.train_nodes(atss, "paper", paper_cfg(gpus_per_node=1)) == (4, 1)


def test_uneven_node_split_is_a_clear_error():
    exp = next(e for e in Registry.load().experiments.values() if e.implemented and e.gpus == 8)
    assert wf.train_nodes(exp, "paper", paper_cfg(gpus_per_node=6)) == (2, 4)
    with pytest.raises(wf.WorkflowInputError, match=rf"{re.escape(exp.id)}: 8 GPUs on nodes of 3 need 3 nodes"):
        wf.train_nodes(exp, "paper", paper_cfg(gpus_per_node=3))


def test_multi_node_command_outside_slurm_fails_naming_the_reason(atss):
    launcher = wf.torchrun_launcher(atss, "paper", paper_cfg(gpus_per_node=2))
    env = {"PATH": "/usr/bin:/bin"}  # no SLURM_JOB_ID
    proc = subprocess.run(["bash", "-c", launcher + " -m rankrepro.cli train x"], capture_output=True, text=True,
                          env=env)
    assert proc.returncode != 0
    assert "multi-node training (gpus_per_node) runs inside a SLURM job" in proc.stderr


# -- what the plugin submits ----------------------------------------------------------------

class _Resources(dict):
    """Snakemake's job resources as the plugin reads them (``.get`` and attributes)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(name) from err


def dry_run_train_job(tmp_path, *config, set_resources=()):
    """The train job of ``EXP`` as a paper-scale dry run of the slurm profile resolves it:
    threads and resources (Snakemake's own evaluation of the rule), as a job object."""
    data_root = tmp_path / "data"
    data_root.mkdir(exist_ok=True)
    args = [sys.executable, "-m", "snakemake", "--profile", str(PROFILE), "-n", "--forceall",
            f"{tmp_path}/work/paper/{EXP}/train.json", "--config", "scale=paper", f"data_root={data_root}",
            f"results={tmp_path}/results", f"work_dirs={tmp_path}/work", *config]
    if set_resources:
        args += ["--set-resources", *set_resources]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    block = out[out.index("rule train:"):]
    block = block[: block.index("\n\n")] if "\n\n" in block else block
    # the dry run of a remote executor prints no threads; the rule's threads function gives them
    found = re.search(r"threads: (\d+)", block)
    cfg = dict(item.split("=", 1) for item in config)
    gpus = {"gpus": int(cfg["gpus"]) if "gpus" in cfg else None}
    threads = int(found.group(1)) if found else wf.train_threads(Registry.load().experiments[EXP], "paper", gpus)
    resources = {}
    for item in re.search(r"resources: (.*)", block).group(1).split(", "):
        key, _, value = item.partition("=")
        resources[key] = int(value) if value.lstrip("-").isdigit() else value
    return SimpleNamespace(threads=threads, resources=_Resources(resources), name="train",
                           is_group=lambda: False)


def plugin_sbatch(job) -> str:
    """The sbatch call snakemake-executor-plugin-slurm builds for ``job`` (its own code)."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    params = {"run_uuid": "test", "slurm_logfile": "/tmp/%j.log", "comment_str": "rule_train", "account": "",
              "partition": "", "workdir": str(ROOT)}
    settings = SimpleNamespace(requeue=False, qos=None, reservation=None)
    return get_submit_command(job, params, settings=settings) + set_gres_string(job)


@pytest.fixture(scope="module")
def one_node_job(tmp_path_factory):
    return dry_run_train_job(tmp_path_factory.mktemp("one_node"))


@pytest.fixture(scope="module")
def two_node_job(tmp_path_factory):
    return dry_run_train_job(tmp_path_factory.mktemp("two_nodes"), "gpus_per_node=2")


def test_plugin_submits_one_node_training_with_its_gpus_cpus_memory_time(one_node_job):
    call = plugin_sbatch(one_node_job)
    assert one_node_job.threads == 16  # 4 data-loading CPUs per GPU
    assert " --gpus=4" in call and " --cpus-per-task=16" in call
    # one task holding every CPU (not --ntasks-per-gpu=1: 4 tasks x 16 CPUs)
    assert "--ntasks-per-gpu" not in call and "--ntasks" not in call and "--nodes" not in call
    assert f" --mem {wf.DEFAULT_RESOURCES['paper']['mem_mb']}" in call
    assert f" -t {wf.DEFAULT_RESOURCES['paper']['runtime']}" in call
    assert "--gres" not in call


def test_plugin_submits_multi_node_training_one_task_per_node(two_node_job):
    call = plugin_sbatch(two_node_job)
    assert two_node_job.resources["mpi"] == "srun"  # the jobstep runs the rule's srun itself
    for option in (" --nodes=2", " --ntasks=2", " --cpus-per-task=8", " --gres=gpu:2", " --gpus=4"):
        assert option in call, (option, call)
    assert "--ntasks-per-gpu" not in call


@pytest.mark.slurm
def test_slurm_accepts_the_plugin_gpu_request(cluster, tmp_path):
    """The test cluster's node declares 2 GPUs (tools/slurm/start.sh): the one-node request
    of a 2-GPU training, as the plugin builds it, is one SLURM can schedule."""
    job = dry_run_train_job(tmp_path, "gpus=2", set_resources=["train:mem_mb=1000", "train:runtime=10"])
    call = plugin_sbatch(job)
    assert " --gpus=2" in call and " --cpus-per-task=8" in call
    # --test-only: SLURM validates the request against the node and says when it would start
    args = call.replace("sbatch --parsable", "sbatch --test-only", 1)
    args = re.sub(r" --cpus-per-task=\d+", " --cpus-per-task=1", args)  # the test node has 2 CPUs
    proc = subprocess.run(f"{args} --wrap true", shell=True, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"Job \d+ to start at .* on nodes", proc.stderr), proc.stderr
    # more GPUs than the node has: refused
    too_many = subprocess.run(f"{args.replace('--gpus=2', '--gpus=3')} --wrap true", shell=True,
                              capture_output=True, text=True)
    assert too_many.returncode != 0 and "not available" in too_many.stderr


DDP_CHECK = """
import json, os, sys
import torch
import torch.distributed as dist
dist.init_process_group("gloo")
total = torch.tensor([dist.get_rank() + 1.0])
dist.all_reduce(total)
out = {"rank": dist.get_rank(), "world": dist.get_world_size(), "sum": total.item(),
       "job": os.environ.get("SLURM_JOB_ID"), "step": os.environ.get("SLURM_STEP_ID"),
       "gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}
with open(os.path.join(sys.argv[1], f"rank{dist.get_rank()}.json"), "w") as f:
    json.dump(out, f)
dist.destroy_process_group()
"""


@pytest.mark.slurm
def test_srun_torchrun_rendezvous_inside_a_slurm_job(cluster, tmp_path):
    """The multi-node launcher, on the one node here: inside a SLURM job whose environment
    holds only SLURM_JOB_ID (as the plugin's jobstep leaves it), ``srun`` starts torchrun as a
    job step, and its processes meet at the c10d rendezvous and all-reduce (gloo, CPU)."""
    script = tmp_path / "ddp_check.py"
    script.write_text(DDP_CHECK)
    out = tmp_path / "out"
    out.mkdir()
    launcher = wf.srun_torchrun(1, 2, cpus_per_gpu=1)  # the test node: 2 CPUs, 2 stand-in GPUs
    batch = tmp_path / "job.sh"
    batch.write_text("#!/bin/bash\n"
                     "for v in $(compgen -e | grep '^SLURM_'); do [ \"$v\" = SLURM_JOB_ID ] || unset \"$v\"; done\n"
                     f"export OMP_NUM_THREADS=1\n{launcher} {script} {out}\n")
    log = tmp_path / "job.log"
    proc = subprocess.run(["sbatch", "--parsable", "--wait", "--nodes=1", "--ntasks=1", "--cpus-per-task=2",
                           "--gres=gpu:2", "--mem=4000", "-t", "10", "-o", str(log), str(batch)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stderr, log.read_text() if log.exists() else "")
    jobid = proc.stdout.strip().split(";")[0]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    for rank, record in enumerate(ranks):
        assert record["rank"] == rank and record["world"] == 2 and record["sum"] == 3.0
        assert record["job"] == jobid and record["step"] == "0"  # the srun step of this job
        assert record["gpus"] == "0,1"  # the step's GRES, as SLURM exports them


# -- a smoke table through the profile on the real cluster ----------------------------------

@pytest.mark.slurm
@pytest.mark.slow  # about 2 minutes (the plugin waits 5 s before each sbatch, status checks)
def test_smoke_table_through_the_slurm_profile(cluster, tmp_path):
    """The profile as it is: job states from squeue (the test cluster has no accounting
    unless started with SLURM_ACCOUNTING=1)."""
    run_smoke_table(tmp_path)


def _accounting() -> bool:
    proc = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True)
    return "accounting_storage/slurmdbd" in proc.stdout


@pytest.mark.slurm
@pytest.mark.slow  # about 2 minutes
def test_smoke_table_with_sacct_job_states(cluster, tmp_path):
    """The plugin's default, job states from sacct: needs the accounting database
    (``SLURM_ACCOUNTING=1 tools/slurm/start.sh``: slurmdbd on MariaDB); sacct then also
    holds every job of the run, as the plugin's own status query reads them."""
    if not _accounting():
        pytest.skip("the cluster has no accounting database (start it with SLURM_ACCOUNTING=1 tools/slurm/start.sh)")
    import asyncio
    import logging

    from snakemake_executor_plugin_slurm.job_status_query import query_job_status, query_job_status_sacct

    out, submitted = run_smoke_table(tmp_path, "--slurm-status-command", "sacct")
    run_id = re.search(r"SLURM run ID: (\S+)", out).group(1)
    states, _ = asyncio.run(query_job_status(query_job_status_sacct(run_id), logging.getLogger("test")))
    assert states == {jobid: "COMPLETED" for jobid in submitted}, (states, submitted)


def run_smoke_table(tmp_path, *options):
    """Run the smoke table through the profile (plus ``options``) and check that every rule
    but the table was a SLURM job that completed, and the table; returns (output, {jobid: log})."""
    config = {"scale": "smoke", "results": str(tmp_path / "results"), "work_dirs": str(tmp_path / "work_dirs"),
              "smoke": {"data": str(tmp_path / "data"), "iters": 4, "checkpoint_interval": 2, "threads": 1},
              "tolerance": 0.3, "partial": False}
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    logdir = tmp_path / "slurm_logs"
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", str(PROFILE), TARGET,
         # the first status check 5 s after a submission (default 40 s), to keep the test short
         "--slurm-init-seconds-before-status-checks", "5", "--slurm-logdir", str(logdir),
         # small requests for rules without their own (the profile's 16 GB may exceed a CI node)
         "--default-resources", "mem_mb=1000", "runtime=30",
         *options, "--configfile", str(configfile)],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]

    # every non-local rule was a SLURM job: its id, its log, and SLURM's record of it
    submitted = dict(re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", out))
    experiments = Registry.load().table_experiments(TABLE_KEY)
    assert len(submitted) == 1 + 2 * len(experiments), out[-3000:]  # data, then train + test each
    for exp in experiments:
        for rule in ("train", "test"):
            logs = list((logdir / f"rule_{rule}" / exp).glob("*.log"))
            assert len(logs) == 1, logs
            jobid = logs[0].stem
            assert jobid in submitted and submitted[jobid] == str(logs[0])
            # SLURM's own record (squeue shows finished jobs for MinJobAge, 600 s on the test cluster)
            state = subprocess.run(["squeue", "--states=all", "-h", "-j", jobid, "-o", "%T|%k"],
                                   capture_output=True, text=True).stdout.strip()
            assert state == f"COMPLETED|rule_{rule}_wildcards_{exp}", state
            text = logs[0].read_text()
            assert f"Finished jobid: 0 (Rule: {rule})" in text
        record = yaml.safe_load((tmp_path / "results" / "smoke" / "metrics" / f"{exp}.json").read_text())
        assert record["train"]["iterations"] == 4
    # the table is rendered on the head node (localrule) and holds the rows
    assert not (logdir / "rule_table").exists()
    tables = tmp_path / "results" / "smoke" / "tables"
    for ext in ("md", "csv", "tex", "html", "png", "pdf", "json"):
        assert (tables / f"{TABLE}.{ext}").stat().st_size > 0
    table = (tables / f"{TABLE}.md").read_text()
    assert "status: **complete**" in table
    with open(tables / f"{TABLE}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["experiment"] for r in rows} == set(experiments)
    for row in rows:  # every published metric of the row has its reproduced smoke value
        assert row["scale"] == "smoke" and row["reproduced"] != "" and float(row["reproduced"]) >= 0
    return out, submitted
