# Configuration, the registry and the helpers every stage uses.
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from rankrepro import workflow as wf
from rankrepro.registry import Registry, RegistryError

min_version("9.0")


configfile: "workflow/config.yaml"


report: "../report/workflow.rst"


validate(config, "../schemas/config.schema.yaml")

config["partial"] = config["partial"] in (
    True,
    "true",
)  # --config partial=true gives a string
SCALE = config["scale"]
RESULTS = f"{config['results']}/{SCALE}"
WORK = f"{config['work_dirs']}/{SCALE}"
try:
    REG = Registry.load()
except RegistryError as err:
    raise WorkflowError(f"the experiment registry: {err}")
if SCALE == "paper":
    DATA_ROOT = wf.check_data_root(config["data_root"])
else:
    DATA_ROOT = config["smoke"]["data"]

REGISTRY_FILES = sorted(str(p) for p in Path("configs/published").glob("*.csv")) + [
    "configs/tables.yaml"
]
IMPLEMENTED = sorted(e.id for e in REG.experiments.values() if e.implemented)
TABLE_NAMES = {t.target.removeprefix("reproduce_"): t for t in REG.tables.values()}


wildcard_constraints:
    exp="|".join(IMPLEMENTED),
    name="|".join(TABLE_NAMES),
    dataset="coco|lvis|cityscapes",


def experiment(wildcards):
    return REG.experiments[wildcards.exp]


def table_experiments(name):
    """The experiments a table needs; a clear error if some have no config yet."""
    table = TABLE_NAMES[name]
    missing = REG.unimplemented(table.key)
    if missing and not config["partial"]:
        raise WorkflowError(
            f"{table.target}: {len(missing)} experiment(s) of {table.key} are not implemented yet: "
            + ", ".join(f"{e} ({REG.experiments[e].missing})" for e in missing)
            + ". Run with --config partial=true to render the table with these rows missing."
        )
    return [e for e in REG.table_experiments(table.key) if e not in missing]


def table_files(name):
    return multiext(
        f"{RESULTS}/tables/{name}",
        ".md",
        ".csv",
        ".tex",
        ".json",
        ".pdf",
        ".html",
        ".png",
    )


def data_marker(wildcards):
    if SCALE == "smoke":
        return f"{DATA_ROOT}/manifest.json"
    # the dataset and the pretrained weights the paper configs load (from data_root/weights/)
    return [
        f"{RESULTS}/data/{experiment(wildcards).dataset}.verified.json",
        f"{RESULTS}/data/weights.verified.json",
    ]


def slurm_resource(wildcards, key):
    """A SLURM resource of a training job (nodes, tasks, gres, ...; None where not needed)."""
    return wf.slurm_train_resources(experiment(wildcards), SCALE, config)[key]


def test_dev_data(wildcards):
    """What a test-dev submission reads: the synthetic set (smoke) or COCO test-dev."""
    if SCALE == "smoke":
        return f"{DATA_ROOT}/manifest.json"
    return f"{RESULTS}/data/coco_test_dev.verified.json"


def table_submissions(name):
    """The test-dev submission records of a table's server-scored rows."""
    exps = set(table_experiments(name))
    return expand(
        f"{RESULTS}/test-dev/{{exp}}.json",
        exp=[
            e for e in wf.test_dev_experiments(REG, TABLE_NAMES[name].key) if e in exps
        ],
    )
