# Stage 1: fabrication-time stuck-at fault maps. The main maps are one file and one job per
# (rate, chip); each study draws all its maps in one job.


rule fault_map:
    output:
        fault_map=FAULT_MAP,
        summary=in_results("faultmaps/{model}/rate{rate}_map{map}.json"),
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


if study_map_paths("stuck_type"):

    rule stuck_type_fault_maps:
        output:
            # Listed in full so a missing map reruns the job; names come from faultreg.studies.
            maps=study_map_paths("stuck_type"),
        params:
            settings=study_map_settings("stuck_type"),
            folder=lambda wildcards, output: str(Path(output.maps[0]).parents[1]),
        conda:
            "../envs/faultreg.yaml"
        log:
            f"logs/fault_map/{MODEL}/stuck_type.log",
        benchmark:
            f"benchmarks/fault_map/{MODEL}/stuck_type.tsv"
        shell:
            "faultreg study-maps --config-json {params.settings:q} --study stuck_type"
            " --folder {params.folder} > {log} 2>&1"


if study_map_paths("sensitivity"):

    rule sensitivity_fault_maps:
        output:
            # Listed in full so a missing map reruns the job; names come from faultreg.studies.
            maps=study_map_paths("sensitivity"),
        params:
            settings=study_map_settings("sensitivity"),
            folder=lambda wildcards, output: str(Path(output.maps[0]).parents[1]),
        conda:
            "../envs/faultreg.yaml"
        log:
            f"logs/fault_map/{MODEL}/sensitivity.log",
        benchmark:
            f"benchmarks/fault_map/{MODEL}/sensitivity.tsv"
        shell:
            "faultreg study-maps --config-json {params.settings:q} --study sensitivity"
            " --folder {params.folder} > {log} 2>&1"


rule fault_maps:
    input:
        all_fault_maps(),
        study_map_paths("stuck_type"),
        study_map_paths("sensitivity"),
