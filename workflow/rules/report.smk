# Stage 5: collect every result into tables, figures and the summary. Its params hold only the
# report section, so changing a plot option redraws figures without retraining anything.


rule aggregate:
    input:
        inference=all_inference_tables(),
        training=all_metrics(),
        cost=COST_CSV,
    output:
        figures=report(
            figure_files(),
            caption="../report/accuracy_vs_fault_rate.rst",
            category="Accuracy",
        ),
        runs="results/tables/accuracy_runs.csv",
        summary_table=report(
            "results/tables/accuracy_summary.csv",
            caption="../report/accuracy_summary.rst",
            category="Accuracy",
        ),
        summary_markdown="results/tables/accuracy_summary.md",
        training_runs="results/tables/training_runs.csv",
        divergence="results/tables/divergence.csv",
        divergence_markdown="results/tables/divergence.md",
        summary="results/summary.md",
    params:
        settings=config_json("report"),
    conda:
        "../envs/faultreg.yaml"
    log:
        "logs/aggregate.log",
    benchmark:
        "benchmarks/aggregate.tsv"
    shell:
        "faultreg aggregate --config-json {params.settings:q}"
        " --inference {input.inference} --training {input.training}"
        " --cost {input.cost} --tables-dir results/tables"
        " --figures-dir results/figures --summary {output.summary} > {log} 2>&1"


rule figures:
    input:
        rules.aggregate.output,
