# Train: one job per experiment of the registry.  Re-running after an interruption resumes
# from the last complete checkpoint in the work dir; the declared output (the training
# record: timing, batch, provenance) is written last.


rule train:
    input:
        data=data_marker,
    output:
        record=f"{WORK}/{{exp}}/train.json",
    log:
        f"{WORK}/{{exp}}/train.log",
    params:
        # rerun trigger: the resolved config (comments and formatting do not count)
        config_hash=lambda wildcards: wf.config_hash(experiment(wildcards).config),
        command=lambda wildcards, threads: wf.train_command(
            experiment(wildcards), SCALE, WORK, DATA_ROOT, config, threads
        ),
    threads: lambda wildcards: wf.train_threads(experiment(wildcards), SCALE, config)
    resources:
        gpu=lambda wildcards: wf.train_gpus(experiment(wildcards), SCALE, config),
        mem_mb=lambda wildcards: wf.resource(experiment(wildcards), SCALE, "mem_mb"),
        runtime=lambda wildcards: wf.resource(experiment(wildcards), SCALE, "runtime"),
    shell:
        "{params.command} > {log} 2>&1 && "
        "{PY} -m rankrepro.workflow train-record {wildcards.exp} --scale {SCALE} --work-dir {WORK}/{wildcards.exp} "
        "--gpus {resources.gpu} --out {output.record} >> {log} 2>&1"
