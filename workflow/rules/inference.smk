# Stage 3: fault-injected inference. One job per method: its fault-free models meet every map
# (main rate sweep, stuck-type and sensitivity studies), and each chip-trained model meets the
# chip it was trained on.


rule inject:
    input:
        unpack(inference_inputs),
        data=dataset_files,
    output:
        INFERENCE,
    params:
        settings=config_json("seed", "dataset", "training", "evaluation"),
    threads: config["training"]["threads"]
    conda:
        "../envs/faultreg.yaml"
    log:
        "logs/inject/{dataset}/{model}/{method}.log",
    benchmark:
        "benchmarks/inject/{dataset}/{model}/{method}.tsv"
    shell:
        "faultreg inject --config-json {params.settings:q}"
        " --checkpoint {input.checkpoints} --fault-map {input.fault_maps}"
        " --threads {threads} --output {output} > {log} 2>&1"


rule inference:
    input:
        all_inference_tables(),
