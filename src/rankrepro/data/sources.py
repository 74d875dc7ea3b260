"""The paper-scale sources (``configs/datasets.yaml``): which archives make each dataset,
where they come from, their published checksums, and the pretrained weights the configs name.

The YAML::

    datasets:
      <dataset>:                      # coco, coco_test_dev, lvis, cityscapes
        archives:
          - name: train2017.zip       # unique over the file; saved as downloads/<dataset>/<name>
            url: http://...           # or cityscapes_package: <csDownload package name>
            size: 19336861798         # bytes, where published
            sha256: ...               # and/or md5; where none is published: checksum: none
            checksum_source: ...      # where the checksum and size were published
            extract_to: coco          # folder under data_root the zip is extracted into
            provides: [coco/train2017/]   # what exists under data_root afterwards
            json_keys: {coco/annotations/x.json: [images, annotations]}   # optional structure check
        links: {lvis_v1/train2017: coco/train2017}   # optional symlinks (link -> target)
        convert: cityscapes                          # optional: mmdet's converter afterwards
        converted: [cityscapes/annotations/...json]  # what the conversion writes
    weights:
      - name: resnet50-0676ba61.pth   # saved as weights/<name>; the hex after '-' is a sha256 prefix
        url: https://download.pytorch.org/models/resnet50-0676ba61.pth
        aliases: [torchvision://resnet50]  # the names configs use for it
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RankReproError
from ..registry import REPO_ROOT

DEFAULT_SOURCES = REPO_ROOT / "configs" / "datasets.yaml"


class SourcesError(RankReproError):
    """A malformed sources YAML, an unknown archive / dataset / weight, a missing data root."""


@dataclass(frozen=True)
class Archive:
    dataset: str
    name: str
    extract_to: str
    provides: tuple
    url: str | None = None
    cityscapes_package: str | None = None
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    checksum_source: str | None = None
    json_keys: dict = field(default_factory=dict)

    @property
    def download_path(self) -> str:
        """Where the archive is saved, relative to data_root."""
        return f"downloads/{self.dataset}/{self.name}"

    @property
    def record_path(self) -> str:
        """The download record (URL, size, sha256 / md5 as measured), relative to data_root."""
        return f"downloads/{self.dataset}/{self.name}.json"


@dataclass(frozen=True)
class Dataset:
    name: str
    archives: tuple
    links: dict = field(default_factory=dict)
    convert: str | None = None
    converted: tuple = ()

    @property
    def outputs(self) -> list[str]:
        """Everything the dataset's download, extraction, links and conversion put under data_root."""
        return [p for a in self.archives for p in a.provides] + list(self.links) + list(self.converted)


@dataclass(frozen=True)
class Weight:
    name: str
    url: str
    aliases: tuple
    sha256: str | None = None
    size: int | None = None
    checksum_source: str | None = None
    unchecked: bool = False  # ``checksum: none`` in the sources file: nothing published to check against

    @property
    def sha256_prefix(self) -> str | None:
        from .download import sha256_prefix_of

        return sha256_prefix_of(self.name)


@dataclass(frozen=True)
class Sources:
    path: str
    datasets: dict
    weights: tuple

    def archive(self, name: str) -> Archive:
        for dataset in self.datasets.values():
            for archive in dataset.archives:
                if archive.name == name:
                    return archive
        raise SourcesError(f"{self.path}: no archive {name!r} (known: "
                           f"{', '.join(a.name for d in self.datasets.values() for a in d.archives)})")

    def weight(self, name: str) -> Weight:
        for weight in self.weights:
            if name == weight.name or name in weight.aliases or name == weight.url:
                return weight
        raise SourcesError(f"{self.path}: no weights {name!r} in its weights list")

    def weight_names(self) -> dict:
        """Every name or URL a config may use for a checkpoint -> the file name in the cache."""
        names = {}
        for weight in self.weights:
            for alias in (*weight.aliases, weight.url):
                names[alias] = weight.name
        return names


def parse_mirror(items) -> dict:
    """``["OFFICIAL=MIRROR", ...]`` -> ``{OFFICIAL: MIRROR}``."""
    out = {}
    for item in items or ():
        official, sep, mirror = item.partition("=")
        if not sep or not official or not mirror:
            raise SourcesError(f"--mirror expects OFFICIAL_PREFIX=MIRROR_PREFIX, got {item!r}")
        out[official] = mirror
    return out


def apply_mirror(url: str | None, mirror: dict | None) -> str | None:
    """``url`` with the longest matching official prefix replaced by its mirror."""
    if not url or not mirror:
        return url
    for official in sorted(mirror, key=len, reverse=True):
        if url.startswith(official):
            return mirror[official] + url[len(official):]
    return url


def load_sources(path=None, mirror: dict | None = None) -> Sources:
    """Read and check the sources YAML (see the module docstring)."""
    import yaml

    path = Path(path or DEFAULT_SOURCES)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise SourcesError(f"sources file {path}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise SourcesError(f"sources file {path}: not valid YAML ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("datasets"), dict):
        raise SourcesError(f"sources file {path}: expected a mapping with 'datasets'")

    def need(entry, key, where):
        if key not in entry:
            raise SourcesError(f"sources file {path}: {where} has no {key!r}")
        return entry[key]

    datasets, seen = {}, set()
    for name, spec in data["datasets"].items():
        archives = []
        for entry in need(spec, "archives", f"dataset {name}"):
            where = f"dataset {name}, archive {entry.get('name')!r}"
            archive_name = need(entry, "name", where)
            if archive_name in seen:
                raise SourcesError(f"sources file {path}: archive name {archive_name!r} appears twice")
            seen.add(archive_name)
            if ("url" in entry) == ("cityscapes_package" in entry):
                raise SourcesError(f"sources file {path}: {where} needs exactly one of url, cityscapes_package")
            if "url" in entry and not any(k in entry for k in ("sha256", "md5")) and entry.get("checksum") != "none":
                raise SourcesError(f"sources file {path}: {where} has no sha256/md5 (write checksum: none, and why, "
                                   "where none is published)")
            archives.append(Archive(
                dataset=name, name=archive_name, extract_to=need(entry, "extract_to", where),
                provides=tuple(need(entry, "provides", where)), url=apply_mirror(entry.get("url"), mirror),
                cityscapes_package=entry.get("cityscapes_package"), size=entry.get("size"), md5=entry.get("md5"),
                sha256=entry.get("sha256"), checksum_source=entry.get("checksum_source"),
                json_keys=dict(entry.get("json_keys") or {})))
        datasets[name] = Dataset(name=name, archives=tuple(archives), links=dict(spec.get("links") or {}),
                                 convert=spec.get("convert"), converted=tuple(spec.get("converted") or ()))
    from .download import sha256_prefix_of  # download imports this module

    weights = []
    for entry in data.get("weights") or []:
        where = f"weights entry {entry.get('name')!r}"
        name = need(entry, "name", where)
        unchecked = entry.get("checksum") == "none"
        if not unchecked and not entry.get("sha256") and not sha256_prefix_of(name):
            raise SourcesError(f"sources file {path}: {where} has neither a SHA-256 prefix in its name nor a sha256 "
                               "(write checksum: none, and why, where nothing is published)")
        weights.append(Weight(name=name, url=apply_mirror(need(entry, "url", where), mirror),
                              aliases=tuple(entry.get("aliases") or ()), sha256=entry.get("sha256"),
                              size=entry.get("size"), checksum_source=entry.get("checksum_source"),
                              unchecked=unchecked))
    return Sources(path=str(path), datasets=datasets, weights=tuple(weights))


def check_data_root(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise SourcesError(f"data_root {root} is not a folder (create it, or point data_root at the folder "
                           "that holds coco/, lvis_v1/, cityscapes/)")
    return root


def make_links(links: dict, root) -> list[str]:
    """Symlinks ``{link: target}`` under ``root`` (a dataset's ``links``), relative so that the
    data root can move, each made atomically (a temporary link renamed over the final name);
    the targets must exist."""
    root = Path(root)
    made = []
    for link, target in links.items():
        path = root / link
        if not (root / target).exists():
            raise SourcesError(f"{path}: its target {root / target} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        relative = os.path.relpath(root / target, path.parent)
        tmp = path.with_name(f".{path.name}.link-tmp")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(relative, tmp)
        if path.is_dir() and not path.is_symlink():
            raise SourcesError(f"{path} is a folder; expected nothing or a link to {target}")
        os.replace(tmp, path)
        made.append(link)
    return made


# -- helpers of the workflow's data rules (workflow/rules/data.smk) --------------------------

def is_folder(rel: str) -> bool:
    """A ``provides`` / ``outputs`` entry that names a folder (written with a trailing slash)."""
    return rel.endswith("/")


def under(root, rel: str) -> str:
    """``rel`` (a file or folder entry) under ``root``, without the trailing slash."""
    return f"{root}/{rel.rstrip('/')}"


def export_to_jobs(sources_file, mirror: dict | None) -> None:
    """Pass the sources file and the mirror to the local download jobs through their
    environment (``RANKREPRO_SOURCES``, ``RANKREPRO_MIRROR``), which the download command
    reads when no ``--sources`` / ``--mirror`` is given: Snakemake reruns a job whose
    parameters changed, and a new mirror or sources path must not download again what is in
    place."""
    import json

    os.environ["RANKREPRO_SOURCES"] = str(sources_file)
    os.environ["RANKREPRO_MIRROR"] = json.dumps(mirror or {})


def dataset_inputs(sources: "Sources | None", dataset: str, root, check_credentials: bool) -> list[str]:
    """What verify_dataset needs first: with downloads on (``sources`` given), everything the
    dataset's rules put under ``root``; without, nothing (verify_dataset names what is
    missing).  Cityscapes packages still to download without an account in the environment
    are an error here (``check_credentials``; the workflow skips it in a dry run), before any
    download starts."""
    if sources is None or dataset not in sources.datasets:
        return []
    spec = sources.datasets[dataset]
    if check_credentials and any(
            a.cityscapes_package and not all(Path(root, p).exists() for p in a.provides) for a in spec.archives):
        from .download import cityscapes_credentials

        cityscapes_credentials()
    return [under(root, p) for p in spec.outputs]
