# faultreg: stuck-at faults in ReRAM crossbars, training regularizers and hardware cost.
# This file only sets up the workflow; rules live in workflow/rules/, one module per stage.
# Run `snakemake` for the whole study (the profile in profiles/default uses all cores).

from snakemake.utils import min_version

min_version("8.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/faultmaps.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/inference.smk"
include: "workflow/rules/cost.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
