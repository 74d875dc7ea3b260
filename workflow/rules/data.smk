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
from rankrepro.data import sources as data_sources

DOWNLOAD = SCALE == "paper" and config.get("download", True) in (True, "true")
SOURCES_FILE = config.get("sources", "configs/datasets.yaml")
MIRROR = config.get("mirror") or {}
SOURCES = None
# The download commands get the sources file and the mirror from their environment, not as
# parameters: Snakemake reruns a job whose parameters changed, and a new mirror must not
# download again what is in place.
data_sources.export_to_jobs(SOURCES_FILE, MIRROR)

if DOWNLOAD:
    import json
    import re as _re

    try:
        SOURCES = data_sources.load_sources(SOURCES_FILE, mirror=MIRROR)
    except data_sources.SourcesError as err:
        raise WorkflowError(str(err))

    for _dataset in SOURCES.datasets.values():
        for _archive in _dataset.archives:
            _id = _re.sub(r"\W", "_", _archive.name)

            rule:
                name:
                    f"download_{_id}"
                # only the archive is declared (temporary): once it is extracted and deleted,
                # nothing downloads it again.  The command also writes the download record
                # (downloads/<dataset>/<archive>.json: URL, size, sha256 / md5 as measured),
                # which verify_dataset copies into its marker.
                output:
                    temp(f"{DATA_ROOT}/{_archive.download_path}"),
                log:
                    f"{RESULTS}/logs/download/{_archive.name}.log",
                # Cityscapes first: missing credentials stop the run before other downloads start
                priority: 10 if _archive.cityscapes_package else 0
                localrule: True
                params:
                    command=wf.module_command(
                        "rankrepro.data.download",
                        "fetch",
                        "--data-root",
                        DATA_ROOT,
                        _archive.name,
                    ),
                shell:
                    "{params.command} > {log} 2>&1"

            rule:
                name:
                    f"extract_{_id}"
                input:
                    f"{DATA_ROOT}/{_archive.download_path}",
                output:
                    [
                        (
                            directory(data_sources.under(DATA_ROOT, p))
                            if data_sources.is_folder(p)
                            else data_sources.under(DATA_ROOT, p)
                        )
                        for p in _archive.provides
                    ],
                log:
                    f"{RESULTS}/logs/download/{_archive.name}.extract.log",
                localrule: True
                params:
                    # what to do, not where it is described: a new sources path extracts nothing again
                    command=wf.module_command(
                        "rankrepro.data.download",
                        "extract",
                        "--data-root",
                        DATA_ROOT,
                        _archive.download_path,
                        "--to",
                        _archive.extract_to,
                        "--provides",
                        *_archive.provides,
                        "--json-keys",
                        json.dumps(_archive.json_keys, sort_keys=True),
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
                        "rankrepro.data.download",
                        "link",
                        "--data-root",
                        DATA_ROOT,
                        *(
                            f"{link}={target}"
                            for link, target in _dataset.links.items()
                        ),
                    ),
                shell:
                    "{params.command} > {log} 2>&1"

        if _dataset.convert == "cityscapes":

            # mmdet's converter needs no internet: a cluster job like any other
            rule:
                name:
                    f"convert_{_dataset.name}"
                input:
                    [
                        data_sources.under(DATA_ROOT, p)
                        for a in _dataset.archives
                        for p in a.provides
                    ],
                output:
                    [f"{DATA_ROOT}/{p}" for p in _dataset.converted],
                log:
                    f"{RESULTS}/logs/download/{_dataset.name}.convert.log",
                threads: 4
                params:
                    command=wf.module_command(
                        "rankrepro.data.download",
                        "convert-cityscapes",
                        "--data-root",
                        DATA_ROOT,
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
        wildcard_constraints:
            weights_file="|".join(_re.escape(w.name) for w in SOURCES.weights) or "^$",
        localrule: True
        params:
            command=lambda wildcards: wf.module_command(
                "rankrepro.data.download",
                "weights",
                "--data-root",
                DATA_ROOT,
                wildcards.weights_file,
            ),
        shell:
            "{params.command} > {log} 2>&1"


# Paper scale: check what the configs read under data_root (the expected annotation files
# and image folders of each dataset, with sizes; the download records, with the sha256
# measured, where the workflow downloaded); a missing or empty file is an error that names it.
rule verify_dataset:
    input:
        # with download=true what the rules above put there; a dry run only shows the plan
        lambda wildcards: data_sources.dataset_inputs(
            SOURCES,
            wildcards.dataset,
            DATA_ROOT,
            check_credentials=not workflow.dryrun,
        ),
    output:
        f"{RESULTS}/data/{{dataset}}.verified.json",
    log:
        f"{RESULTS}/logs/verify_{{dataset}}.log",
    wildcard_constraints:
        dataset="coco|coco_test_dev|lvis|cityscapes",
    localrule: True
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
        lambda wildcards: (
            [f"{DATA_ROOT}/weights/{w.name}" for w in SOURCES.weights]
            if DOWNLOAD
            else []
        ),
    output:
        f"{RESULTS}/data/weights.verified.json",
    log:
        f"{RESULTS}/logs/verify_weights.log",
    localrule: True
    params:
        command=wf.module_command(
            "rankrepro.data.download",
            "verify-weights",
            "--data-root",
            DATA_ROOT,  # sources: $RANKREPRO_SOURCES
        ),
    shell:
        "{params.command} --out {output} > {log} 2>&1"
