# Stage 3: fault-injected inference. Fault-free models meet every fault map; a model trained
# on a faulty chip is evaluated on that same chip.


rule inject:
    input:
        checkpoint=CHECKPOINT,
        fault_maps=evaluation_fault_maps,
        data=dataset_files,
    output:
        INFERENCE,
    params:
        settings=config_json("seed", "dataset", "training", "evaluation"),
        fault_maps=evaluation_fault_map_arguments,
    threads: config["training"]["threads"]
    conda:
        "../envs/faultreg.yaml"
    log:
        "logs/inject/{dataset}/{model}/{method}/{condition}/seed{seed}.log",
    benchmark:
        "benchmarks/inject/{dataset}/{model}/{method}/{condition}/seed{seed}.tsv"
    shell:
        "faultreg inject --config-json {params.settings:q}"
        " --checkpoint {input.checkpoint} {params.fault_maps} --threads {threads}"
        " --output {output} > {log} 2>&1"


rule inference:
    input:
        all_inference_tables(),
