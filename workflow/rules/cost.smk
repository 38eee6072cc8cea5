# Stage 4: area and power overhead of every mitigation, from the component library.


rule cost_model:
    output:
        csv=report(
            COST_CSV,
            caption="../report/cost_overheads.rst",
            category="Hardware cost",
        ),
        markdown=COST_MARKDOWN,
    params:
        settings=config_json("cost", "crossbar"),
    conda:
        "../envs/faultreg.yaml"
    log:
        "logs/cost_model.log",
    benchmark:
        "benchmarks/cost_model.tsv"
    shell:
        "faultreg cost --config-json {params.settings:q}"
        " --csv {output.csv} --markdown {output.markdown} > {log} 2>&1"


rule costs:
    input:
        rules.cost_model.output,
