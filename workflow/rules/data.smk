# Data: the synthetic dataset (smoke scale) or a verified dataset under data_root (paper
# scale).  Training jobs depend on the marker this stage writes.


rule synthetic_data:
    output:
        f"{config['smoke']['data']}/manifest.json",
    log:
        f"{config['results']}/smoke/logs/synthetic_data.log",
    params:
        command=wf.cli_command("make-data", config["smoke"]["data"]),
        # the generator's code (its layouts: COCO, LVIS v1, Cityscapes): a change regenerates
        generator=wf.code_hash(wf.DATA_CODE),
    shell:
        "{params.command} > {log} 2>&1"


# Paper scale with download=true (the default): what is missing under data_root is fetched
# from the sources YAML (configs/datasets.yaml: official URLs, published checksums), one rule
# per archive: download (resumable, checksummed; a temp() archive under data_root/downloads/,
# deleted once extracted; its record stays beside it) -> extraction (atomic) -> links
# (LVIS v1 -> COCO's images) -> conversion (Cityscapes -> COCO format).  Downloads and
# extractions are local rules: on a cluster they run on the head node, compute nodes need no
# internet.  Data the user placed under data_root already is used as it is: its files are
# these rules' outputs, and Snakemake runs nothing for outputs that exist.
import json
import os

DOWNLOAD = SCALE == "paper" and config.get("download", True) in (True, "true")
SOURCES_FILE = config.get("sources", "configs/datasets.yaml")
_MIRROR = config.get("mirror") or {}


def _data_path(rel):
    """An output under data_root (folders, written with a trailing '/', as directory())."""
    return directory(f"{DATA_ROOT}/{rel.rstrip('/')}") if rel.endswith("/") else f"{DATA_ROOT}/{rel}"


def _download_command(command, name):
    """``fetch`` / ``weights`` of one file.  The sources file and the mirror reach the command
    through the environment (RANKREPRO_SOURCES, RANKREPRO_MIRROR; download rules are local, so
    they run with this process's environment), not its arguments: Snakemake reruns a job whose
    parameters changed, and a new mirror must not download again what is in place."""
    return wf.module_command("rankrepro.data.download", command, "--data-root", DATA_ROOT, name)


os.environ["RANKREPRO_SOURCES"] = str(SOURCES_FILE)
os.environ["RANKREPRO_MIRROR"] = json.dumps(_MIRROR)


if DOWNLOAD:
    import re as _re

    from rankrepro.data import sources as _sources

    try:
        SOURCES = _sources.load_sources(SOURCES_FILE, mirror=_MIRROR)
    except _sources.SourcesError as err:
        raise WorkflowError(str(err))

    for _dataset in SOURCES.datasets.values():
        for _archive in _dataset.archives:
            _id = _re.sub(r"\W", "_", _archive.name)

            rule:
                name:
                    f"download_{_id}"
                # only the archive is declared (temporary): once it is extracted and deleted, a
                # changed mirror or sources path never makes Snakemake download it again.  The
                # command also writes the download record (downloads/<dataset>/<archive>.json:
                # URL, size, sha256 / md5 as measured), which verify_dataset copies into its marker.
                output:
                    temp(f"{DATA_ROOT}/{_archive.download_path}"),
                log:
                    f"{RESULTS}/logs/download/{_archive.name}.log",
                localrule: True
                # Cityscapes first: missing credentials stop the run before other downloads start
                priority: 10 if _archive.cityscapes_package else 0
                params:
                    command=_download_command("fetch", _archive.name),
                shell:
                    "{params.command} > {log} 2>&1"

            rule:
                name:
                    f"extract_{_id}"
                input:
                    f"{DATA_ROOT}/{_archive.download_path}",
                output:
                    [_data_path(p) for p in _archive.provides],
                log:
                    f"{RESULTS}/logs/download/{_archive.name}.extract.log",
                localrule: True
                params:
                    # what to do, not where it is described: a new mirror or sources path extracts nothing again
                    command=wf.module_command(
                        "rankrepro.data.download", "extract", "--data-root", DATA_ROOT, _archive.download_path,
                        "--to", _archive.extract_to, "--provides", *_archive.provides,
                        "--json-keys", json.dumps(_archive.json_keys, sort_keys=True),
                    ),
                shell:
                    "{params.command} > {log} 2>&1"

        if _dataset.links:

            rule:
                name:
                    f"link_{_dataset.name}"
                input:
                    [f"{DATA_ROOT}/{target}" for target in _dataset.links.values()],
                output:
                    [directory(f"{DATA_ROOT}/{link}") for link in _dataset.links],
                log:
                    f"{RESULTS}/logs/download/{_dataset.name}.links.log",
                localrule: True
                params:
                    command=wf.module_command(
                        "rankrepro.data.download", "link", "--data-root", DATA_ROOT,
                        *(f"{link}={target}" for link, target in _dataset.links.items()),
                    ),
                shell:
                    "{params.command} > {log} 2>&1"

        if _dataset.convert == "cityscapes":

            # mmdet's converter needs no internet: a cluster job like any other
            rule:
                name:
                    f"convert_{_dataset.name}"
                input:
                    [f"{DATA_ROOT}/{p.rstrip('/')}" for a in _dataset.archives for p in a.provides],
                output:
                    [f"{DATA_ROOT}/{p}" for p in _dataset.converted],
                log:
                    f"{RESULTS}/logs/download/{_dataset.name}.convert.log",
                threads: 4
                params:
                    command=wf.module_command(
                        "rankrepro.data.download", "convert-cityscapes", "--data-root", DATA_ROOT
                    ),
                shell:
                    "{params.command} --nproc {threads} > {log} 2>&1"

    # Every checkpoint the paper-scale configs name, into data_root/weights/ (train jobs load
    # them there with --weights-dir, so compute nodes need no internet).
    rule download_weights:
        output:
            f"{DATA_ROOT}/weights/{{weights_file}}",
        log:
            f"{RESULTS}/logs/download/weights_{{weights_file}}.log",
        localrule: True
        wildcard_constraints:
            weights_file="|".join(_re.escape(w.name) for w in SOURCES.weights) or "^$",
        params:
            command=lambda wildcards: _download_command("weights", wildcards.weights_file),
        shell:
            "{params.command} > {log} 2>&1"


def _dataset_outputs(wildcards):
    """With download=true, what the dataset's rules put under data_root (so missing parts are
    fetched first); with download=false nothing: verify_dataset reports what is missing."""
    if not DOWNLOAD or wildcards.dataset not in SOURCES.datasets:
        return []
    dataset = SOURCES.datasets[wildcards.dataset]
    outputs = [f"{DATA_ROOT}/{p.rstrip('/')}" for p in dataset.outputs]
    # Cityscapes packages to download but no account: an error now, before any download starts
    # (a dry run only shows the plan)
    if not workflow.dryrun and any(a.cityscapes_package and not all(Path(DATA_ROOT, p).exists() for p in a.provides)
           for a in dataset.archives):
        from rankrepro.data.download import DownloadError, cityscapes_credentials

        try:
            cityscapes_credentials()
        except DownloadError as err:
            raise WorkflowError(f"{wildcards.dataset} under {DATA_ROOT}: {err}")
    return outputs


# Paper scale: check what the configs read under data_root (the expected annotation files
# and image folders of each dataset, with sizes; the download records, with the sha256
# measured, where the workflow downloaded); a missing or empty file is an error that names it.
rule verify_dataset:
    input:
        _dataset_outputs,
    output:
        f"{RESULTS}/data/{{dataset}}.verified.json",
    log:
        f"{RESULTS}/logs/verify_{{dataset}}.log",
    localrule: True
    wildcard_constraints:
        dataset="coco|coco_test_dev|lvis|cityscapes",
    params:
        command=lambda wildcards: wf.module_command(
            "rankrepro.workflow", "verify-dataset", wildcards.dataset, DATA_ROOT
        ),
    shell:
        "{params.command} --out {output} > {log} 2>&1"


# Paper scale: every checkpoint of the weights list is in data_root/weights/ with its sha256
# (prefix) verified; train jobs depend on this marker.
rule verify_weights:
    input:
        lambda wildcards: [f"{DATA_ROOT}/weights/{w.name}" for w in SOURCES.weights] if DOWNLOAD else [],
    output:
        f"{RESULTS}/data/weights.verified.json",
    log:
        f"{RESULTS}/logs/verify_weights.log",
    localrule: True
    params:
        command=wf.module_command(
            "rankrepro.data.download", "verify-weights", "--data-root", DATA_ROOT  # sources: $RANKREPRO_SOURCES
        ),
    shell:
        "{params.command} --out {output} > {log} 2>&1"
