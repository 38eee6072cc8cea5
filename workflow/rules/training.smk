# Stage 2: training. Every method trains fault-free and on each faulty chip with the same
# protocol; the baseline (no regularization) and the regularized methods are separate rules so
# each can be rerun alone.

rule train_baseline:
    input:
        fault_map=training_fault_map,
        data=dataset_files,
    output:
        checkpoint="results/training/{dataset}/{model}/baseline/{condition}/seed{seed}/model.pt",
        metrics="results/training/{dataset}/{model}/baseline/{condition}/seed{seed}/metrics.json",
        history="results/training/{dataset}/{model}/baseline/{condition}/seed{seed}/history.csv",
    params:
        settings=config_json(*TRAINING_SECTIONS, methods=["baseline"]),
        fault_map=training_fault_map_argument,
    threads: config["training"]["threads"]
    conda:
        "../envs/faultreg.yaml"
    log:
        "logs/train/{dataset}/{model}/baseline/{condition}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{dataset}/{model}/baseline/{condition}/seed{seed}.tsv"
    shell:
        "faultreg train --config-json {params.settings:q} --method baseline"
        " --seed {wildcards.seed} {params.fault_map} --threads {threads}"
        " --checkpoint {output.checkpoint} --metrics {output.metrics}"
        " --history {output.history} > {log} 2>&1"


rule train_regularized:
    input:
        fault_map=training_fault_map,
        data=dataset_files,
    output:
        checkpoint=CHECKPOINT,
        metrics=METRICS,
        history=HISTORY,
    params:
        settings=lambda wildcards: config_json(*TRAINING_SECTIONS, methods=[wildcards.method]),
        fault_map=training_fault_map_argument,
    threads: config["training"]["threads"]
    conda:
        "../envs/faultreg.yaml"
    log:
        "logs/train/{dataset}/{model}/{method}/{condition}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{dataset}/{model}/{method}/{condition}/seed{seed}.tsv"
    shell:
        "faultreg train --config-json {params.settings:q} --method {wildcards.method}"
        " --seed {wildcards.seed} {params.fault_map} --threads {threads}"
        " --checkpoint {output.checkpoint} --metrics {output.metrics}"
        " --history {output.history} > {log} 2>&1"


ruleorder: train_baseline > train_regularized


rule train:
    input:
        all_checkpoints(),
