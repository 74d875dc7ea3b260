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
    threads: lambda wildcards: wf.train_threads(experiment(wildcards), SCALE, config)
    resources:
        gpu=lambda wildcards: wf.train_gpus(experiment(wildcards), SCALE, config),
        mem_mb=lambda wildcards: wf.resource(experiment(wildcards), SCALE, "mem_mb"),
        runtime=lambda wildcards: wf.resource(experiment(wildcards), SCALE, "runtime"),
        # SLURM (workflow/profiles/slurm): one task per node; several nodes where the config's
        # gpus_per_node is below the job's GPUs (None = left out; unused by local runs)
        nodes=lambda wildcards: slurm_resource(wildcards, "nodes"),
        tasks=lambda wildcards: slurm_resource(wildcards, "tasks"),
        tasks_per_gpu=lambda wildcards: slurm_resource(wildcards, "tasks_per_gpu"),
        cpus_per_task=lambda wildcards: slurm_resource(wildcards, "cpus_per_task"),
        gres=lambda wildcards: slurm_resource(wildcards, "gres"),
        mpi=lambda wildcards: slurm_resource(wildcards, "mpi"),
    params:
        # rerun trigger: config, training code (syntax trees without comments or docstrings),
        # schedule and batch; a work dir of another key is moved aside, not resumed
        run_key=lambda wildcards: wf.run_key(experiment(wildcards), SCALE, config),
        train=lambda wildcards, threads: wf.train_command(
            experiment(wildcards), SCALE, WORK, DATA_ROOT, config, threads
        ),
        record=lambda wildcards: wf.record_command(
            "train-record", experiment(wildcards), SCALE, WORK, config
        ),
    shell:
        "{params.train} > {log} 2>&1 && {params.record} --out {output.record} >> {log} 2>&1"
