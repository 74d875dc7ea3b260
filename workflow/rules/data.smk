# Data: the synthetic dataset (smoke scale) or a verified dataset under data_root (paper
# scale).  Training jobs depend on the marker this stage writes.


def data_marker(wildcards):
    if SCALE == "smoke":
        return f"{DATA_ROOT}/manifest.json"
    return f"{RESULTS}/data/{experiment(wildcards).dataset}.verified.json"


rule synthetic_data:
    output:
        f"{config['smoke']['data']}/manifest.json",
    log:
        f"{config['results']}/smoke/logs/synthetic_data.log",
    params:
        root=config["smoke"]["data"],
    shell:
        "{PY} -m rankrepro.cli make-data {params.root} > {log} 2>&1"


# Paper scale: check what the user placed under data_root (the expected annotation files
# and image folders of each dataset, with sizes); a missing or empty file is an error that
# names it.  Downloading what is missing is the next issue's.
rule verify_dataset:
    output:
        f"{RESULTS}/data/{{dataset}}.verified.json",
    log:
        f"{RESULTS}/logs/verify_{{dataset}}.log",
    params:
        root=lambda wildcards: DATA_ROOT,
    localrule: True
    shell:
        "{PY} -m rankrepro.workflow verify-dataset {wildcards.dataset} {params.root} --out {output} > {log} 2>&1"
