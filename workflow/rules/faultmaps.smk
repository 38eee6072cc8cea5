# Stage 1: fabrication-time stuck-at fault maps, one file per (rate, chip).


rule fault_map:
    output:
        fault_map=FAULT_MAP,
        summary="results/faultmaps/{model}/rate{rate}_map{map}.json",
    params:
        settings=config_json("seed", "model", "crossbar", "faults"),
    conda:
        "../envs/faultreg.yaml"
    log:
        "logs/fault_map/{model}/rate{rate}_map{map}.log",
    benchmark:
        "benchmarks/fault_map/{model}/rate{rate}_map{map}.tsv"
    shell:
        "faultreg fault-map --config-json {params.settings:q}"
        " --rate {wildcards.rate} --map-index {wildcards.map}"
        " --output {output.fault_map} > {log} 2>&1"


rule fault_maps:
    input:
        all_fault_maps(),
