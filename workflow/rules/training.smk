# Stage 2: training. Every method, the unregularized baseline included, trains with the same
# protocol: fault-free, on each faulty chip, and (endurance study) with cells that wear out.
# One job trains every seed of a condition, or every chip and seed of a chipset, so the cost
# of starting Python and reading the data is paid once per job.


rule train_fault_free:
    input:
        data=dataset_files,
    output:
        checkpoints=seed_outputs(CHECKPOINT, "fault_free"),
        metrics=seed_outputs(METRICS, "fault_free"),
        histories=seed_outputs(HISTORY, "fault_free"),
    params:
        settings=lambda wildcards: config_json(*TRAINING_SECTIONS, methods=[wildcards.method]),
        seeds=" ".join(str(seed) for seed in TRAINING_SEEDS),
        run_dir=RUN_DIR.replace("{condition}", "fault_free"),
    threads: config["training"]["threads"]
    conda:
        "../envs/faultreg.yaml"
    log:
        "logs/train/{dataset}/{model}/{method}/fault_free.log",
    benchmark:
        "benchmarks/train/{dataset}/{model}/{method}/fault_free.tsv"
    shell:
        "faultreg train --config-json {params.settings:q} --method {wildcards.method}"
        " --seed {params.seeds} --run-dir {params.run_dir} --threads {threads} > {log} 2>&1"


rule train_on_faulty_chips:
    input:
        fault_maps=lambda wildcards: chipset_maps(wildcards.chipset),
        data=dataset_files,
    output:
        checkpoints=chip_outputs(CHECKPOINT),
        metrics=chip_outputs(METRICS),
        histories=chip_outputs(HISTORY),
    params:
        settings=lambda wildcards: config_json(*TRAINING_SECTIONS, methods=[wildcards.method]),
        seeds=" ".join(str(seed) for seed in TRAINING_SEEDS),
        run_dirs=chip_run_dirs,
    threads: config["training"]["threads"]
    conda:
        "../envs/faultreg.yaml"
    log:
        "logs/train/{dataset}/{model}/{method}/{chipset}.log",
    benchmark:
        "benchmarks/train/{dataset}/{model}/{method}/{chipset}.tsv"
    shell:
        "faultreg train --config-json {params.settings:q} --method {wildcards.method}"
        " --seed {params.seeds} --fault-map {input.fault_maps} --run-dir {params.run_dirs}"
        " --threads {threads} > {log} 2>&1"


rule train_with_wear:
    input:
        data=dataset_files,
    output:
        checkpoints=seed_outputs(CHECKPOINT, "wear"),
        metrics=seed_outputs(METRICS, "wear"),
        histories=seed_outputs(HISTORY, "wear"),
    params:
        settings=lambda wildcards: config_json(*TRAINING_SECTIONS, methods=[wildcards.method]),
        seeds=" ".join(str(seed) for seed in TRAINING_SEEDS),
        run_dir=RUN_DIR.replace("{condition}", "wear"),
    threads: config["training"]["threads"]
    conda:
        "../envs/faultreg.yaml"
    log:
        "logs/train/{dataset}/{model}/{method}/wear.log",
    benchmark:
        "benchmarks/train/{dataset}/{model}/{method}/wear.tsv"
    shell:
        "faultreg train --config-json {params.settings:q} --method {wildcards.method}"
        " --seed {params.seeds} --wear --run-dir {params.run_dir} --threads {threads} > {log} 2>&1"


rule train_baseline:
    input:
        run_files(CHECKPOINT, "baseline"),


rule train_regularized:
    input:
        [path for method in all_methods() if method != "baseline" for path in run_files(CHECKPOINT, method)],


rule train:
    input:
        all_checkpoints(),
        [path for method in ENDURANCE_METHODS for path in run_files(CHECKPOINT, method, ["wear"])],
