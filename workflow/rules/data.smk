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


# Paper scale: check what the user placed under data_root (the expected annotation files
# and image folders of each dataset, with sizes); a missing or empty file is an error that
# names it.  Downloading what is missing is the next issue's.
rule verify_dataset:
    output:
        f"{RESULTS}/data/{{dataset}}.verified.json",
    log:
        f"{RESULTS}/logs/verify_{{dataset}}.log",
    localrule: True
    params:
        command=lambda wildcards: wf.module_command(
            "rankrepro.workflow", "verify-dataset", wildcards.dataset, DATA_ROOT
        ),
    shell:
        "{params.command} --out {output} > {log} 2>&1"
