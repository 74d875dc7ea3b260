# Submit: COCO test-dev rows (RS paper Tables 3 and 8, the aLRP README's test-dev column) are
# scored by COCO's evaluation server.  For each trained model that feeds one, a format-only run
# on test-dev writes the zips to upload; the table marks those rows "server".  At smoke scale
# the synthetic validation images stand in for test-dev, so the same path runs on CPU.


rule submit_test_dev:
    input:
        record=f"{WORK}/{{exp}}/train.json",
        data=test_dev_data,
    output:
        record=f"{RESULTS}/test-dev/{{exp}}.json",
    log:
        f"{WORK}/{{exp}}/test-dev.log",
    threads: lambda wildcards: wf.test_threads(experiment(wildcards), SCALE, config)
    resources:
        gpu=lambda wildcards: 1 if SCALE == "paper" else 0,
    params:
        command=lambda wildcards, threads: wf.submit_command(
            experiment(wildcards), SCALE, WORK, RESULTS, DATA_ROOT, threads, config
        ),
    shell:
        "{params.command} --out {output.record} > {log} 2>&1"
