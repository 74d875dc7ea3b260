# Test: evaluate each trained model into a metrics JSON (AP / oLRP keys in the published
# tables' vocabulary, mask and LVIS keys where the config evaluates them), with training
# time per iteration, test images per second and provenance.


rule test:
    input:
        record=f"{WORK}/{{exp}}/train.json",
    output:
        metrics=f"{RESULTS}/metrics/{{exp}}.json",
    log:
        f"{WORK}/{{exp}}/test.log",
    threads: lambda wildcards: wf.test_threads(experiment(wildcards), SCALE, config)
    resources:
        gpu=lambda wildcards: 1 if SCALE == "paper" else 0,
    params:
        test=lambda wildcards, threads: wf.test_command(
            experiment(wildcards), SCALE, WORK, DATA_ROOT, threads, config
        ),
        record=lambda wildcards: wf.record_command(
            "metrics-record", experiment(wildcards), SCALE, WORK, config
        ),
    shell:
        "{params.test} > {log} 2>&1 && {params.record} --out {output.metrics} >> {log} 2>&1"
