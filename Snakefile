# RankRepro: regenerate the papers' tables (published vs reproduced).
#
#   snakemake --cores all reproduce_table2                       # smoke scale (synthetic data, CPU)
#   snakemake --cores all reproduce_table2 --config scale=paper data_root=/data
#
# One target per published table (`reproduce_table1` ... `reproduce_tableA20`,
# `reproduce_<readme>_<section>`, `reproduce_all`); the registry under configs/ knows the
# papers, the rules below only chain data -> train -> test (and test-dev submissions) -> tables.


import os


# The image the jobs run in with `--software-deployment-method apptainer` (docker/README.md):
# a registry URI or a local .sif built from the Docker image; RANKREPRO_CONTAINER overrides.
container: os.environ.get("RANKREPRO_CONTAINER", "docker://rankrepro/rankrepro:cpu")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/test.smk"
include: "workflow/rules/submit.smk"
include: "workflow/rules/tables.smk"
