"""`rankrepro make-data / train / test`: option validation and `rankrepro <cmd>: error: ...` (exit 2)
for bad input instead of tracebacks (issue 15, items 5 and 7)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rankrepro.cli import main
from rankrepro.data.synthetic import make_synthetic_coco
from rankrepro.errors import RankReproError

CONFIG = "configs/atss/rs_atss_r50_fpn_1x_coco.py"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_tiny")
    make_synthetic_coco(root, num_train=2, num_val=2)
    return root


def _parse_error(argv, capsys) -> str:
    """argparse rejects ``argv``: exit status 2 and a `rankrepro <cmd>: error:` line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"rankrepro {argv[0]}: error: " in err
    return err


def _error(argv, capsys) -> str:
    """The subcommand refuses ``argv``: return value 2, one clean error line, no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    start = err.find(f"rankrepro {argv[0]}: error: ")  # libraries may print warnings before it
    assert start >= 0, err
    return err[start:]


@pytest.mark.parametrize("value", ["0", "-5", "abc"])
def test_max_iters_must_be_positive(value, data_root, tmp_path, capsys):
    err = _parse_error(["train", CONFIG, "--smoke", "--data-root", str(data_root), "--max-iters", value,
                        "--work-dir", str(tmp_path)], capsys)
    assert "--max-iters" in err


@pytest.mark.parametrize("command", ["train", "test"])
def test_max_iters_needs_smoke_and_smoke_needs_data(command, data_root, tmp_path, capsys):
    extra = ["ckpt.pth"] if command == "test" else []
    err = _parse_error([command, CONFIG, *extra, "--max-iters", "10", "--work-dir", str(tmp_path)], capsys)
    assert "--max-iters is used only with --smoke" in err
    err = _parse_error([command, CONFIG, *extra, "--smoke", "--work-dir", str(tmp_path)], capsys)
    assert "--smoke needs --data-root" in err


def test_data_root_without_smoke_moves_the_datasets(tmp_path, capsys):
    """Paper scale: --data-root replaces mmdet's data/ folder (it used to be ignored silently)."""
    from rankrepro.runner import load_config

    cfg = load_config(CONFIG, tmp_path / "w", data_root=tmp_path)
    assert cfg.train_dataloader.dataset.data_root == f"{tmp_path}/coco/"
    assert cfg.test_dataloader.dataset.data_root == f"{tmp_path}/coco/"
    assert cfg.val_evaluator.ann_file == f"{tmp_path}/coco/annotations/instances_val2017.json"
    assert cfg.test_evaluator.ann_file == f"{tmp_path}/coco/annotations/instances_val2017.json"

    err = _error(["train", CONFIG, "--data-root", str(tmp_path / "nowhere"), "--work-dir", str(tmp_path / "w")], capsys)
    assert "--data-root" in err and "nowhere is not a folder" in err
    bare = tmp_path / "bare.py"
    bare.write_text("model = dict(type='ATSS')\n")
    err = _error(["train", str(bare), "--data-root", str(tmp_path), "--work-dir", str(tmp_path / "w")], capsys)
    assert "reads no dataset under data/" in err


@pytest.mark.parametrize(
    "option,value", [("--num-train", "0"), ("--num-val", "0"), ("--num-val", "-1"), ("--seed", "-1"), ("--num-train", "2.5")]
)
def test_make_data_numbers_validated(option, value, tmp_path, capsys):
    err = _parse_error(["make-data", str(tmp_path / "d"), option, value], capsys)
    assert option in err
    assert not (tmp_path / "d").exists()


def test_empty_work_dir_rejected(data_root, capsys):
    err = _parse_error(["train", CONFIG, "--smoke", "--data-root", str(data_root), "--work-dir", ""], capsys)
    assert "--work-dir" in err


def test_train_missing_config(data_root, tmp_path, capsys):
    err = _error(["train", "configs/atss/no_such_config.py", "--smoke", "--data-root", str(data_root),
                  "--work-dir", str(tmp_path / "w")], capsys)
    assert "configs/atss/no_such_config.py does not exist" in err


def test_train_unreadable_config(data_root, tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("model = dict(type='ATSS'\n")
    err = _error(["train", str(bad), "--smoke", "--data-root", str(data_root), "--work-dir", str(tmp_path / "w")], capsys)
    assert str(bad) in err and "SyntaxError" in err


def test_train_corrupted_dataset(data_root, tmp_path, capsys):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(data_root, damaged)
    png = damaged / "val" / "000001.png"
    png.write_bytes(png.read_bytes()[:-3] + b"xyz")
    err = _error(["train", CONFIG, "--smoke", "--data-root", str(damaged), "--work-dir", str(tmp_path / "w")], capsys)
    assert "val/000001.png does not match its checksum" in err
    err = _error(["train", CONFIG, "--smoke", "--data-root", str(tmp_path / "nowhere"), "--work-dir", str(tmp_path / "w")],
                 capsys)
    assert "nowhere does not exist" in err


def test_work_dir_that_is_a_file(data_root, tmp_path, capsys):
    file = tmp_path / "file"
    file.write_text("x")
    err = _error(["train", CONFIG, "--smoke", "--data-root", str(data_root), "--work-dir", str(file)], capsys)
    assert "is not a folder" in err


def test_test_missing_and_broken_checkpoint(data_root, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    base = [CONFIG, "--smoke", "--data-root", str(data_root), "--work-dir", str(tmp_path / "w"), "--out", str(out)]
    err = _error(["test", base[0], str(tmp_path / "missing.pth"), *base[1:]], capsys)
    assert "missing.pth is missing" in err
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"PK\x03\x04 not really a checkpoint")
    err = _error(["test", base[0], str(broken), *base[1:]], capsys)
    assert "broken.pth is incomplete or corrupt" in err
    assert not out.exists()


def test_test_out_must_not_be_an_input(data_root, tmp_path, capsys):
    import torch

    checkpoint = tmp_path / "c.pth"
    torch.save({"state_dict": {}}, checkpoint)
    before = checkpoint.read_bytes()
    err = _error(["test", CONFIG, str(checkpoint), "--smoke", "--data-root", str(data_root),
                  "--work-dir", str(tmp_path / "w"), "--out", str(checkpoint)], capsys)
    assert "is an input" in err
    assert checkpoint.read_bytes() == before


def test_make_data_foreign_folder(tmp_path, capsys):
    folder = tmp_path / "photos"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "holiday.png").write_bytes(b"mine")
    err = _error(["make-data", str(folder)], capsys)
    assert str(folder) in err and "manifest.json" in err
    assert (folder / "train" / "holiday.png").read_bytes() == b"mine"


def test_bugs_keep_their_traceback(monkeypatch, tmp_path):
    """Only bad input is turned into a one-line error: an unexpected exception propagates."""
    import rankrepro.data.synthetic as synthetic

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(synthetic, "make_synthetic_coco", broken)
    with pytest.raises(ZeroDivisionError):
        main(["make-data", str(tmp_path / "d")])


def test_error_type_is_a_value_error():
    assert issubclass(RankReproError, ValueError)


def test_console_script_prints_no_traceback(tmp_path):
    """The installed entry point, as a user runs it: one error line, exit status 2."""
    exe = Path(sys.executable).with_name("rankrepro")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "rankrepro.cli"]
    env = dict(os.environ)
    proc = subprocess.run([*command, "test", "configs/atss/nope.py", str(tmp_path / "x.pth"), "--work-dir", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("rankrepro test: error: checkpoint")
    assert "Traceback" not in proc.stderr


def test_distributed_launcher_outside_its_launcher(data_root, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    err = _error(["train", CONFIG, "--smoke", "--data-root", str(data_root), "--work-dir", str(tmp_path / "w"),
                  "--launcher", "pytorch"], capsys)
    assert "--launcher pytorch needs the environment of its launcher (LOCAL_RANK is not set)" in err
