"""The paper-scale data rules for real: Snakemake downloads a tiny COCO / LVIS v1 / Cityscapes
(served as archives by a real HTTP server on 127.0.0.1), extracts, links, converts (mmdet's
Cityscapes converter) and verifies them, and a second run downloads nothing.  Also: the
weights list covers every checkpoint the configs name, and ``--weights-dir`` loads them."""
from __future__ import annotations

import glob
import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from rankrepro import workflow as wf
from rankrepro.data.sources import load_sources
from rankrepro.errors import RankReproError
from rankrepro.registry import Registry
from rankrepro.runner import checkpoint_references, load_config
from test_download import LocalServer

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "configs/atss/rs_atss_r50_fpn_1x_coco.py"


# -- the weights list -----------------------------------------------------------------------

def test_weights_urls_are_mmengines_and_names_carry_the_sha256_prefix():
    import mmengine

    hub = Path(mmengine.__file__).parent / "hub"
    tables = {"torchvision://": json.loads((hub / "torchvision_0.12.json").read_text()),
              "open-mmlab://": json.loads((hub / "openmmlab.json").read_text())}
    sources = load_sources()
    assert sources.weights
    for weight in sources.weights:
        assert weight.url.rsplit("/", 1)[1] == weight.name
        if weight.unchecked:  # the Swin authors' release files: no published checksum, none in the name
            assert weight.sha256_prefix is None and weight.url.startswith("https://github.com/SwinTransformer/")
            continue
        assert weight.sha256_prefix and len(weight.sha256_prefix) == 8
        for alias in weight.aliases:
            scheme = alias[: alias.index("://") + 3]
            assert tables[scheme][alias[len(scheme):]] == weight.url, alias


def test_a_weight_without_any_checksum_must_say_so(tmp_path):
    from rankrepro.data.sources import SourcesError

    entry = "  - name: model.pth\n    url: https://example.org/model.pth\n"
    path = tmp_path / "sources.yaml"
    path.write_text("datasets: {}\nweights:\n" + entry)
    with pytest.raises(SourcesError, match="'model.pth' has neither a SHA-256 prefix"):
        load_sources(path)
    path.write_text("datasets: {}\nweights:\n" + entry + "    checksum: none\n")
    (weight,) = load_sources(path).weights
    assert weight.unchecked and weight.sha256_prefix is None


@pytest.mark.slow
def test_every_checkpoint_the_configs_name_is_in_the_weights_list():
    """Resolved with mmengine (mmdet:: bases included): every init_cfg.checkpoint and load_from."""
    from mmengine.config import Config

    names = load_sources().weight_names()
    named, missing = set(), []
    for config in sorted(glob.glob(str(ROOT / "configs" / "**" / "*.py"), recursive=True)):
        for _, _, value in checkpoint_references(Config.fromfile(config)):
            named.add(value)
            if value not in names:
                missing.append(f"{Path(config).relative_to(ROOT)}: {value}")
    assert not missing, missing
    assert {"torchvision://resnet50", "torchvision://resnet101"} <= named
    assert set(load_sources().weight_names().values()) == {names[v] for v in named}  # no unused entries


def test_weights_dir_replaces_every_name_and_loads_the_file(tmp_path):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    weights = tmp_path / "weights"
    weights.mkdir()
    # a real ResNet-50 state dict (torchvision's key names) under the cached name
    backbone = MODELS.build(dict(type="ResNet", depth=50, init_cfg=None))
    torch.save(backbone.state_dict(), weights / "resnet50-0676ba61.pth")
    cfg = load_config(CONFIG, tmp_path / "work", weights_dir=weights)
    assert cfg.model.backbone.init_cfg.checkpoint == str(weights / "resnet50-0676ba61.pth")
    assert all(not v.startswith("torchvision://") for _, _, v in checkpoint_references(cfg))
    loaded = MODELS.build(cfg.model.backbone)
    loaded.init_weights()  # mmengine's Pretrained init from the local file
    for key, value in backbone.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_weights_dir_without_the_file_is_an_error_naming_it(tmp_path):
    empty = tmp_path / "weights"
    empty.mkdir()
    with pytest.raises(RankReproError, match=r"resnet50-0676ba61.pth: missing .*torchvision://resnet50.*download_weights"):
        load_config(CONFIG, tmp_path / "work", weights_dir=empty)
    proc = subprocess.run([sys.executable, "-m", "rankrepro.cli", "train", CONFIG, "--work-dir", str(tmp_path / "w"),
                           "--weights-dir", str(empty)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "resnet50-0676ba61.pth: missing" in proc.stderr


def test_paper_train_command_loads_weights_from_the_data_root():
    exp = next(e for e in Registry.load().experiments.values() if e.implemented)
    command = wf.train_command(exp, "paper", "work", "/data", {"gpus": None, "smoke": {}}, 0)
    assert "--weights-dir /data/weights " in command
    assert "--weights-dir" not in wf.train_command(exp, "smoke", "work", "data/synthetic",
                                                    {"smoke": {"iters": 10}}, 1)


# -- the Snakemake rules against a local server ------------------------------------------------

def _zip(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _tree(folder: Path, prefix: str) -> dict:
    return {f"{prefix}/{p.relative_to(folder)}": p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _with_test_split(members: dict) -> dict:
    """The real Cityscapes packages hold a test split too (mmdet's converter requires its
    images): the synthetic val split stands in for it."""
    return {**members, **{k.replace("/val/", "/test/"): v for k, v in members.items() if "/val/" in k}}


@pytest.fixture(scope="module")
def served_sources(tmp_path_factory):
    """A tiny COCO 2017 / LVIS v1 / Cityscapes (the synthetic generator's) packed as the
    official archives are, a checkpoint, and a sources YAML pointing at a local server."""
    from rankrepro.data.synthetic import make_synthetic_coco

    base = tmp_path_factory.mktemp("served")
    synthetic = base / "synthetic"
    make_synthetic_coco(synthetic, num_train=3, num_val=2)
    served = base / "files"
    served.mkdir()
    ann = synthetic / "annotations"
    cs = synthetic / "cityscapes"
    archives = {
        "coco": [
            ("annotations_trainval2017.zip", {"annotations/instances_train2017.json": (ann / "instances_train.json").read_bytes(),
                                               "annotations/instances_val2017.json": (ann / "instances_val.json").read_bytes()},
             "coco", ["coco/annotations/instances_train2017.json", "coco/annotations/instances_val2017.json"]),
            ("train2017.zip", _tree(synthetic / "train", "train2017"), "coco", ["coco/train2017/"]),
            ("val2017.zip", _tree(synthetic / "val", "val2017"), "coco", ["coco/val2017/"]),
        ],
        "lvis": [
            ("lvis_v1_train.json.zip", {"lvis_v1_train.json": (ann / "lvis_v1_train.json").read_bytes()},
             "lvis_v1/annotations", ["lvis_v1/annotations/lvis_v1_train.json"]),
            ("lvis_v1_val.json.zip", {"lvis_v1_val.json": (ann / "lvis_v1_val.json").read_bytes()},
             "lvis_v1/annotations", ["lvis_v1/annotations/lvis_v1_val.json"]),
        ],
        "cityscapes": [
            ("gtFine_trainvaltest.zip", {**_with_test_split(_tree(cs / "gtFine", "gtFine")), "README": b"x"}, "cityscapes",
             ["cityscapes/gtFine/"]),
            ("leftImg8bit_trainvaltest.zip", {**_with_test_split(_tree(cs / "leftImg8bit", "leftImg8bit")), "README": b"x"},
             "cityscapes", ["cityscapes/leftImg8bit/"]),
        ],
    }
    datasets = {}
    for dataset, entries in archives.items():
        datasets[dataset] = {"archives": []}
        for name, members, extract_to, provides in entries:
            data = _zip(members)
            (served / name).write_bytes(data)
            datasets[dataset]["archives"].append({
                "name": name, "url": f"http://official.invalid/{name}", "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(), "extract_to": extract_to, "provides": provides,
                "json_keys": {p: ["images", "categories"] for p in provides if p.endswith(".json")}})
    datasets["lvis"]["links"] = {"lvis_v1/train2017": "coco/train2017", "lvis_v1/val2017": "coco/val2017"}
    datasets["cityscapes"].update(convert="cityscapes", converted=[
        f"cityscapes/annotations/instancesonly_filtered_gtFine_{s}.json" for s in ("train", "val")])
    weights = b"not a real checkpoint, but checksummed"
    weight_name = f"tiny-{hashlib.sha256(weights).hexdigest()[:8]}.pth"
    (served / weight_name).write_bytes(weights)
    return served, datasets, weight_name


def _snakemake(tmp, sources, *targets, configfile=None):
    extra = ["--configfile", str(configfile)] if configfile else []
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", "Snakefile", "--cores", "1", *extra, "--config", "scale=paper",
         f"data_root={tmp / 'data'}", f"sources={sources}", f"results={tmp / 'results'}",
         f"work_dirs={tmp / 'work'}", "--", *targets],
        cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_snakemake_downloads_extracts_converts_and_verifies_then_downloads_nothing(served_sources, tmp_path):
    served, datasets, weight_name = served_sources
    (tmp_path / "data").mkdir()
    with LocalServer(served) as server:
        yaml_data = {"datasets": datasets, "weights": [{"name": weight_name, "url": f"http://official.invalid/{weight_name}",
                                                        "aliases": ["torchvision://tiny"]}]}
        sources = tmp_path / "sources.yaml"
        sources.write_text(json.dumps(yaml_data))  # the "official" host does not exist: the mirror serves
        mirror = tmp_path / "mirror.yaml"
        mirror.write_text(json.dumps({"mirror": {"http://official.invalid/": server.url()}}))
        markers = [tmp_path / f"results/paper/data/{d}.verified.json" for d in ("coco", "lvis", "cityscapes", "weights")]
        proc = _snakemake(tmp_path, sources, *markers, configfile=mirror)
        assert proc.returncode == 0, proc.stderr[-4000:]
        first = list(server.requests)
        # the second run (without the mirror: where the files came from does not matter once they
        # are in place): nothing to do
        again = _snakemake(tmp_path, sources, *markers)
        assert again.returncode == 0, again.stderr[:6000]
        # a fresh results folder (data the user placed): verified again, still no download
        shutil.rmtree(tmp_path / "results")
        fresh = _snakemake(tmp_path, sources, *markers)
        assert fresh.returncode == 0, fresh.stderr[-3000:]
        after = list(server.requests)
    data = tmp_path / "data"
    names = sorted([a["name"] for d in datasets.values() for a in d["archives"]] + [weight_name])
    assert sorted(path.lstrip("/") for path, _, _ in first) == names and all(s == 200 for _, _, s in first)
    assert "Nothing to be done" in again.stdout + again.stderr
    assert after == first  # neither later run asked the server for anything
    assert "download_" not in fresh.stdout + fresh.stderr.replace("download_records", "")
    coco = json.loads(markers[0].read_text())
    assert set(coco["files"]) == set(wf.DATASET_FILES["coco"])
    assert coco["downloads"]["val2017.zip"]["sha256"] == datasets["coco"]["archives"][2]["sha256"]
    assert sorted(p.name for p in (data / "coco/val2017").iterdir() if not p.name.startswith(".")) == \
        sorted(p.name for p in (served.parent / "synthetic/val").iterdir())
    assert (data / "lvis_v1/train2017").is_symlink() and (data / "lvis_v1/train2017").resolve() == (data / "coco/train2017").resolve()
    converted = json.loads((data / "cityscapes/annotations/instancesonly_filtered_gtFine_val.json").read_text())
    assert len(converted["images"]) == 2 and converted["annotations"]
    assert json.loads(markers[3].read_text())["files"][weight_name]["sha256"].startswith(weight_name[5:13])
    # the archives were temporary (deleted once extracted), their records stay; nothing half-done remains
    assert sorted(p.name for p in (data / "downloads/coco").iterdir()) == sorted(
        f"{a['name']}.json" for a in datasets["coco"]["archives"])
    assert not [p for p in data.rglob("*") if p.name.endswith((".part", ".extracting"))]


def test_download_false_only_verifies_and_names_the_missing_file(tmp_path):
    (tmp_path / "data").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", "Snakefile", "--cores", "1", "--config", "scale=paper",
         f"data_root={tmp_path / 'data'}", "download=false", f"results={tmp_path / 'results'}",
         f"work_dirs={tmp_path / 'work'}", "--", str(tmp_path / "results/paper/data/coco.verified.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    log = (tmp_path / "results/paper/logs/verify_coco.log").read_text()
    assert f"{tmp_path / 'data'}/coco/annotations/instances_train2017.json: missing file" in log
    assert "download_" not in proc.stdout


def test_cityscapes_without_credentials_stops_before_any_download(tmp_path):
    """With the official sources (csDownload packages) and no account in the environment, the
    run fails while Snakemake builds its jobs: nothing is downloaded, not even COCO."""
    import os

    (tmp_path / "data").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYSCAPES_")}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", "Snakefile", "--cores", "1", "--config", "scale=paper",
         f"data_root={tmp_path / 'data'}", f"results={tmp_path / 'results'}", f"work_dirs={tmp_path / 'work'}", "--",
         str(tmp_path / "results/paper/data/coco.verified.json"),
         str(tmp_path / "results/paper/data/cityscapes.verified.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode != 0
    assert "set CITYSCAPES_USERNAME and CITYSCAPES_PASSWORD in the environment" in proc.stderr
    assert list((tmp_path / "data").iterdir()) == [] and not (tmp_path / "results").exists()
    dry = subprocess.run(proc.args[:3] + ["-n"] + proc.args[3:], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env=env)  # a dry run shows the plan all the same
    assert dry.returncode == 0 and "download_gtFine_trainvaltest_zip" in dry.stdout, dry.stderr[-2000:]
