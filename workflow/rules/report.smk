# Stage 5: collect every result into tidy tables, then draw each figure, judge the claims and
# write the summary. Their params hold only the sections they read (report, and the study and
# fault settings that say which rows belong to which figure), so changing a plot option
# redraws figures without retraining anything.


rule aggregate:
    input:
        inference=all_inference_tables(),
        training=all_metrics(),
        histories=all_histories(),
    output:
        runs=f"{TABLES}/accuracy_runs.csv",
        summary_table=report(
            f"{TABLES}/accuracy_summary.csv",
            caption="../report/accuracy_summary.rst",
            category="Accuracy",
        ),
        summary_markdown=f"{TABLES}/accuracy_summary.md",
        training_runs=f"{TABLES}/training_runs.csv",
        history=f"{TABLES}/training_history.csv",
        divergence=f"{TABLES}/divergence.csv",
        divergence_markdown=f"{TABLES}/divergence.md",
    params:
        settings=config_json("report", "faults", "studies"),
        tables=folder_of("runs"),
    conda:
        "../envs/faultreg.yaml"
    log:
        "logs/aggregate.log",
    benchmark:
        "benchmarks/aggregate.tsv"
    shell:
        "faultreg aggregate --config-json {params.settings:q}"
        " --inference {input.inference} --training {input.training}"
        " --history {input.histories} --tables-dir {params.tables} > {log} 2>&1"


rule figure:
    input:
        runs=rules.aggregate.output.runs,
        training_runs=rules.aggregate.output.training_runs,
        history=rules.aggregate.output.history,
        method_costs=METHOD_COSTS_CSV,
    output:
        figures=report(
            expand(in_results("figures/{{name}}.{ext}"), ext=FIGURE_FORMATS),
            caption="../report/figure.rst",
            category="Figures",
        ),
        data=in_results("figures/{name}.csv"),
    params:
        settings=config_json("report", "faults", "studies"),
        tables=folder_of("runs"),
        figures=folder_of("data"),
    conda:
        "../envs/faultreg.yaml"
    log:
        "logs/figure/{name}.log",
    benchmark:
        "benchmarks/figure/{name}.tsv"
    shell:
        "faultreg figure --config-json {params.settings:q} --name {wildcards.name}"
        " --tables-dir {params.tables} --figures-dir {params.figures} > {log} 2>&1"


rule claims:
    input:
        runs=rules.aggregate.output.runs,
        training_runs=rules.aggregate.output.training_runs,
        history=rules.aggregate.output.history,
        cost=COST_CSV,
        method_costs=METHOD_COSTS_CSV,
    output:
        csv=f"{TABLES}/claims.csv",
        markdown=report(f"{TABLES}/claims.md", caption="../report/claims.rst", category="Claims"),
    params:
        settings=config_json("report", "faults", "studies", "methods"),
        tables=folder_of("runs"),
    conda:
        "../envs/faultreg.yaml"
    log:
        "logs/claims.log",
    benchmark:
        "benchmarks/claims.tsv"
    shell:
        "faultreg claims --config-json {params.settings:q} --tables-dir {params.tables}"
        " --cost {input.cost} --csv {output.csv} --markdown {output.markdown} > {log} 2>&1"


rule summary:
    input:
        runs=rules.aggregate.output.runs,
        tables=rules.aggregate.output,
        claims=rules.claims.output.csv,
        cost=COST_CSV,
        figures=[path for name in FIGURE_NAMES for path in figure_files(name)],
    output:
        in_results("summary.md"),
    params:
        settings=config_json("report"),
        tables=folder_of("runs"),
    conda:
        "../envs/faultreg.yaml"
    log:
        "logs/summary.log",
    benchmark:
        "benchmarks/summary.tsv"
    shell:
        "faultreg summary --config-json {params.settings:q} --tables-dir {params.tables}"
        " --claims {input.claims} --cost {input.cost} --figure {input.figures}"
        " --output {output} > {log} 2>&1"


rule figures:
    input:
        all_figure_files(),
        rules.claims.output,
        rules.summary.output,


# One target per figure, named after it: `snakemake sensitivity` draws figures/sensitivity.* in results_dir.
for figure_name in FIGURE_NAMES:

    rule:
        name:
            figure_name
        input:
            figure_files(figure_name),
            in_results(f"figures/{figure_name}.csv"),
