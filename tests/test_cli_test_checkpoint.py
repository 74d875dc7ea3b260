"""`rankrepro test` loads checkpoints strictly and reports a checkpoint trained with another config
(issue 15, item 1)."""
import json

import pytest

pytest.importorskip("mmdet")

from rankrepro import runner  # noqa: E402
from rankrepro.cli import main  # noqa: E402
from rankrepro.data.synthetic import make_synthetic_coco  # noqa: E402

RS_ATSS = "configs/atss/rs_atss_r50_fpn_1x_coco.py"
RS_ATSS_DELTA = "configs/atss/rs_atss_delta025_r50_fpn_1x_coco.py"  # same weights, RS delta 0.25
RS_PAA = "configs/paa/rs_paa_r50_fpn_1x_coco.py"
ALRP_RETINANET = "configs/retinanet/alrp_retinanet_r50_fpn_100e_coco500.py"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An RS-ATSS smoke checkpoint (one real training iteration) and its dataset."""
    root = tmp_path_factory.mktemp("ckpt")
    data = root / "data"
    make_synthetic_coco(data, num_train=4, num_val=4)
    runner.train(RS_ATSS, root / "work", smoke=True, data_root=data, max_iters=1)
    return data, root / "work" / "iter_1.pth"


def _message(err: str, prefix: str) -> str:
    """Our message in stderr (libraries print warnings there too): from its first line on."""
    start = err.find(prefix)
    assert start >= 0, err[-2000:]
    return err[start:]


def _test(config, checkpoint, data, tmp_path, *extra):
    out = tmp_path / "metrics.json"
    argv = ["test", config, str(checkpoint), "--smoke", "--data-root", str(data), "--max-iters", "1",
            "--work-dir", str(tmp_path / "test"), "--out", str(out), *extra]
    return main(argv), out


def test_same_config_matches(trained, tmp_path, capsys):
    data, checkpoint = trained
    code, out = _test(RS_ATSS, checkpoint, data, tmp_path)
    assert code == 0
    saved = json.loads(out.read_text())
    assert saved["checkpoint_config_differs"] is False
    assert saved["checkpoint_config"] == {"stored": True, "matches": True, "iter": 1, "epoch": 0,
                                          "num_differences": 0, "differences": []}
    assert "coco/bbox_mAP" in saved["metrics"]
    assert "rankrepro test: warning" not in capsys.readouterr().err


def test_another_architecture_is_an_error(trained, tmp_path, capsys):
    """aLRP RetinaNet's head has other parameters: missing / unexpected / size-mismatched keys."""
    data, checkpoint = trained
    code, out = _test(ALRP_RETINANET, checkpoint, data, tmp_path)
    err = capsys.readouterr().err
    assert code == 2
    err = _message(err, f"rankrepro test: error: checkpoint {checkpoint} does not fit the model of config")
    assert "missing keys" in err or "unexpected key" in err or "size mismatch" in err
    assert "Traceback" not in err
    assert not out.exists()
    assert not (tmp_path / "test" / "test.bbox.metrics.json").exists()  # nothing was evaluated


def test_another_detector_with_fitting_weights_is_reported(trained, tmp_path, capsys):
    """RS-PAA has exactly RS-ATSS's parameters, so strict loading accepts the weights; the
    output says that the checkpoint was trained as another detector."""
    data, checkpoint = trained
    code, out = _test(RS_PAA, checkpoint, data, tmp_path)
    err = capsys.readouterr().err
    assert code == 0
    report = json.loads(out.read_text())["checkpoint_config"]
    assert report["stored"] and not report["matches"]
    assert {"key": "model.bbox_head.type", "checkpoint": "RankBasedATSSHead", "config": "RankBasedPAAHead"} in report[
        "differences"
    ]
    warning = _message(err, f"rankrepro test: warning: checkpoint {checkpoint}: the checkpoint was trained with another")
    assert "model.bbox_head.type: 'RankBasedATSSHead' in the checkpoint, 'RankBasedPAAHead' in the config" in warning


def test_same_weights_other_config_reported(trained, tmp_path, capsys):
    data, checkpoint = trained
    code, out = _test(RS_ATSS_DELTA, checkpoint, data, tmp_path)
    assert code == 0
    assert json.loads(out.read_text())["checkpoint_config_differs"] is True
    report = json.loads(out.read_text())["checkpoint_config"]
    assert report["stored"] and not report["matches"]
    assert report["differences"] == [{"key": "model.bbox_head.loss_rank.delta", "checkpoint": 0.5, "config": 0.25}]
    err = capsys.readouterr().err
    assert "rankrepro test: warning:" in err and "model.bbox_head.loss_rank.delta: 0.5 in the checkpoint, 0.25 in the config" in err

    # --strict-config makes it an error, before anything is evaluated or written
    out.unlink()
    code, out = _test(RS_ATSS_DELTA, checkpoint, data, tmp_path, "--strict-config")
    err = capsys.readouterr().err
    assert code == 2
    assert "loss_rank.delta" in _message(err, "rankrepro test: error: --strict-config:")
    assert not out.exists()


def test_checkpoint_without_config(trained, tmp_path, capsys):
    """A weights-only file (no mmengine meta) loads if it fits, and the output says it was not compared."""
    import torch

    data, checkpoint = trained
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    bare = tmp_path / "bare.pth"
    torch.save({"state_dict": state}, bare)
    code, out = _test(RS_ATSS, bare, data, tmp_path)
    assert code == 0
    assert json.loads(out.read_text())["checkpoint_config_differs"] is None  # unknown
    report = json.loads(out.read_text())["checkpoint_config"]
    assert report["stored"] is False and report["matches"] is False
    assert "stores no config" in capsys.readouterr().err

    # one parameter missing: strict loading refuses it
    del state[next(k for k in state if k.startswith("bbox_head."))]
    torch.save({"state_dict": state}, bare)
    out.unlink()
    code, out = _test(RS_ATSS, bare, data, tmp_path)
    assert code == 2 and "missing keys" in capsys.readouterr().err
    assert not out.exists()
