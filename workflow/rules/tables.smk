# Tables: each published table regenerated next to its published numbers (Markdown, CSV,
# LaTeX, and a plot), and one target per table.


rule table:
    input:
        # the published numbers and the table registry: a corrected cell re-renders the table
        published=REGISTRY_FILES,
        metrics=lambda wildcards: expand(
            f"{RESULTS}/metrics/{{exp}}.json", exp=table_experiments(wildcards.name)
        ),
        # COCO test-dev rows: the files to upload to the evaluation server
        submissions=lambda wildcards: table_submissions(wildcards.name),
    output:
        md=f"{RESULTS}/tables/{{name}}.md",
        csv=f"{RESULTS}/tables/{{name}}.csv",
        tex=f"{RESULTS}/tables/{{name}}.tex",
        json=f"{RESULTS}/tables/{{name}}.json",
        pdf=f"{RESULTS}/tables/{{name}}.pdf",
        html=report(
            f"{RESULTS}/tables/{{name}}.html",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{name}", "kind": "table"},
        ),
        png=report(
            f"{RESULTS}/tables/{{name}}.png",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{name}", "kind": "plot"},
        ),
    log:
        f"{RESULTS}/logs/table_{{name}}.log",
    localrule: True
    params:
        command=lambda wildcards: wf.cli_command(
            "tables",
            "--table",
            TABLE_NAMES[wildcards.name].key,
            "--results",
            config["results"],
            "--scale",
            SCALE,
            "--tolerance",
            config["tolerance"],
        ),
    shell:
        "{params.command} > {log} 2>&1"


for _name, _table in TABLE_NAMES.items():

    rule:
        name:
            _table.target
        default_target: _name == "table2"
        input:
            table_files(_name),
        localrule: True


rule reproduce_all:
    input:
        [table_files(name) for name in TABLE_NAMES],
    localrule: True


rule reproduce:
    """The tables named by --config tables=[...]."""
    input:
        [table_files(wf.table_name(REG, t)) for t in config.get("tables", [])],
    localrule: True
