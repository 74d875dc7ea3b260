"""Training survives SIGKILL (issue 15, item 2): atomic checkpoints, `--resume` from the newest
complete checkpoint, fallback past a corrupt one, a clear error when none is usable.

The training tests run the real command line in a subprocess (RS-ATSS smoke variant on a tiny
synthetic dataset) and kill it with SIGKILL: once from outside mid-run, once from inside while a
checkpoint is being written (the test seam ``RANKREPRO_TEST_KILL_DURING_CHECKPOINT``)."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mmdet")
import torch  # noqa: E402

from rankrepro.cli import main  # noqa: E402
from rankrepro.data.synthetic import make_synthetic_coco  # noqa: E402
from rankrepro.engine import checkpoint_problem, find_resume_checkpoint  # noqa: E402
from rankrepro.engine.checkpoints import KILL_SEAM_ENV  # noqa: E402
from rankrepro.errors import RankReproError  # noqa: E402

CONFIG = "configs/atss/rs_atss_r50_fpn_1x_coco.py"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_resume")
    make_synthetic_coco(root, num_train=8, num_val=4)
    return root


def _command(data_root, work_dir, max_iters, *cfg_options):
    return [sys.executable, "-m", "rankrepro.cli", "train", CONFIG, "--smoke", "--data-root", str(data_root),
            "--max-iters", str(max_iters), "--work-dir", str(work_dir), "--resume",
            "--cfg-options", "default_hooks.checkpoint.interval=2", *cfg_options]


# One thread: on a shared 2-core machine the first RS-ATSS iterations are ~30x slower with two.
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _start(command, log: Path, env=None):
    with open(log, "w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **THREADS, **(env or {})})


def _run(command, log: Path, env=None) -> int:
    proc = _start(command, log, env)
    return proc.wait(timeout=900)


def _meta_iter(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=False)["meta"]["iter"]


def _resumed_iter(log: Path) -> int:
    found = re.findall(r"resumed epoch: \d+, iter: (\d+)", log.read_text())
    assert len(found) == 1, log.read_text()[-3000:]
    return int(found[0])


def _logged_iters(log: Path) -> list[int]:
    return [int(i) for i in re.findall(r"Iter\(train\) \[\s*(\d+)/\d+\]", log.read_text())]


def _checkpoints(work_dir: Path) -> dict[int, Path]:
    return {int(p.stem.split("_")[1]): p for p in work_dir.glob("iter_*.pth")}


def test_sigkill_mid_run_then_resume_and_fallback(data_root, tmp_path):
    work = tmp_path / "work"
    max_iters = 16
    command = _command(data_root, work, max_iters)

    # 1. A fresh run (the workflow always passes --resume): killed from outside once iter_4 exists.
    first = tmp_path / "first.log"
    proc = _start(command, first)
    deadline = time.monotonic() + 600
    while not (work / "iter_4.pth").exists():
        assert proc.poll() is None, first.read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert "no checkpoint in" in first.read_text() and "starting from iteration 0" in first.read_text()

    saved = _checkpoints(work)
    assert saved and max(saved) < max_iters, "the kill came too late to test anything"
    assert all(checkpoint_problem(p) is None for p in saved.values())  # complete or absent, never half
    assert len(saved) <= 2  # the smoke variant keeps two
    last = max(saved)

    # 2. --resume continues from the newest complete checkpoint, not from 0.
    second = tmp_path / "second.log"
    assert _run(command, second) == 0, second.read_text()[-3000:]
    assert _resumed_iter(second) == last
    logged = _logged_iters(second)
    assert logged and min(logged) > last, logged
    saved = _checkpoints(work)
    assert sorted(saved) == [max_iters - 2, max_iters]
    assert _meta_iter(saved[max_iters]) == max_iters
    assert Path((work / "last_checkpoint").read_text().strip()).resolve() == saved[max_iters].resolve()

    # 3. The newest checkpoint damaged (truncated): --resume falls back to the previous one.
    newest = saved[max_iters]
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 3])
    third = tmp_path / "third.log"
    assert _run(command, third) == 0, third.read_text()[-3000:]
    text = third.read_text()
    assert "skipping" in text and f"iter_{max_iters}.pth is incomplete or corrupt" in text
    assert _resumed_iter(third) == max_iters - 2
    assert min(_logged_iters(third)) > max_iters - 2
    assert checkpoint_problem(newest) is None and _meta_iter(newest) == max_iters


def test_sigkill_during_checkpoint_save_then_resume(data_root, tmp_path):
    """Killed while writing iter_6 with max_keep_ckpts=1: mmengine deletes iter_4 first and writes
    iter_6 in place (no usable checkpoint left); here iter_4 survives and --resume continues at 4."""
    work = tmp_path / "work"
    command = _command(data_root, work, 10, "default_hooks.checkpoint.max_keep_ckpts=1")
    first = tmp_path / "first.log"
    assert _run(command, first, env={KILL_SEAM_ENV: "6"}) == -signal.SIGKILL, first.read_text()[-3000:]
    assert sorted(_checkpoints(work)) == [4]
    assert checkpoint_problem(work / "iter_4.pth") is None
    assert Path((work / "last_checkpoint").read_text().strip()).resolve() == (work / "iter_4.pth").resolve()
    leftovers = list(work.glob(".iter_6.pth.*.tmp"))
    assert len(leftovers) == 1 and checkpoint_problem(leftovers[0]) is not None  # the half-written save

    second = tmp_path / "second.log"
    assert _run(command, second) == 0, second.read_text()[-3000:]
    assert _resumed_iter(second) == 4
    assert min(_logged_iters(second)) > 4
    assert sorted(_checkpoints(work)) == [10] and _meta_iter(work / "iter_10.pth") == 10
    assert not list(work.glob(".*.tmp"))


# ----------------------------------------------------------------- choosing the checkpoint (no training)


def _save(path: Path, step: int) -> Path:
    torch.save({"meta": {"iter": step}, "state_dict": {"w": torch.zeros(64)}}, path)
    return path


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_find_resume_checkpoint(tmp_path):
    tmp_path = tmp_path.resolve()
    assert find_resume_checkpoint(tmp_path) == (None, [])  # nothing there: a fresh start
    (tmp_path / ".iter_2.pth.123.tmp").write_bytes(b"half")  # only an interrupted first save
    assert find_resume_checkpoint(tmp_path) == (None, [])

    for step in (2, 4, 6):
        _save(tmp_path / f"iter_{step}.pth", step)
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "iter_4.pth"))
    # iter_6 is complete (renamed) although last_checkpoint was not updated before the kill
    assert find_resume_checkpoint(tmp_path) == (tmp_path / "iter_6.pth", [])

    _truncate(tmp_path / "iter_6.pth")
    path, skipped = find_resume_checkpoint(tmp_path)
    assert path == tmp_path / "iter_4.pth"
    assert len(skipped) == 1 and "iter_6.pth is incomplete or corrupt" in skipped[0]

    # a flipped byte inside the data: the zip CRC catches it
    data = bytearray((tmp_path / "iter_4.pth").read_bytes())
    offset = data.index(b"data/0") + 200
    data[offset] ^= 0xFF
    (tmp_path / "iter_4.pth").write_bytes(bytes(data))
    path, skipped = find_resume_checkpoint(tmp_path)
    assert path == tmp_path / "iter_2.pth" and len(skipped) == 2

    _truncate(tmp_path / "iter_2.pth")
    with pytest.raises(RankReproError, match=r"no complete checkpoint.*iter_6.*iter_4.*iter_2"):
        find_resume_checkpoint(tmp_path)


def test_find_resume_checkpoint_missing_last(tmp_path):
    tmp_path = tmp_path.resolve()
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "iter_8.pth"))
    with pytest.raises(RankReproError, match=r"iter_8\.pth is missing"):
        find_resume_checkpoint(tmp_path)
    _save(tmp_path / "iter_6.pth", 6)
    path, skipped = find_resume_checkpoint(tmp_path)
    assert path == tmp_path / "iter_6.pth" and "iter_8.pth is missing" in skipped[0]


def test_resume_with_only_corrupt_checkpoints_fails_clearly(data_root, tmp_path, capsys):
    work = tmp_path / "work"
    work.mkdir()
    _truncate(_save(work / "iter_4.pth", 4))
    code = main(["train", CONFIG, "--smoke", "--data-root", str(data_root), "--max-iters", "6",
                 "--work-dir", str(work), "--resume"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert "iter_4.pth is incomplete or corrupt" in err[err.index("rankrepro train: error: --resume:"):]
    assert sorted(p.name for p in work.iterdir()) == ["iter_4.pth"]  # nothing trained, nothing removed
