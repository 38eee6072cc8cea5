# Stage 4: area and power overhead of every mitigation, from the component library, and table
# T1: what each configured method adds per crossbar, IMA, tile and chip.


rule cost_model:
    input:
        # The component library is an input, so editing it redoes the cost tables and what uses them.
        library=COST_LIBRARY,
    output:
        csv=report(
            COST_CSV,
            caption="../report/cost_overheads.rst",
            category="Hardware cost",
        ),
        markdown=COST_MARKDOWN,
        methods_csv=report(
            METHOD_COSTS_CSV,
            caption="../report/method_costs.rst",
            category="Hardware cost",
        ),
        methods_markdown=METHOD_COSTS_MARKDOWN,
    params:
        settings=config_json("cost", "crossbar", methods=METHODS),
    conda:
        "../envs/faultreg.yaml"
    log:
        "logs/cost_model.log",
    benchmark:
        "benchmarks/cost_model.tsv"
    shell:
        "faultreg cost --config-json {params.settings:q}"
        " --csv {output.csv} --markdown {output.markdown}"
        " --methods-csv {output.methods_csv} --methods-markdown {output.methods_markdown} > {log} 2>&1"


rule costs:
    input:
        rules.cost_model.output,
