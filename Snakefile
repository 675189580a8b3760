# aqforecast daily cycle. Thin by design: the stages live in `aqforecast <stage>`; the rules in
# workflow/rules/ (one file per stage) only wire files together under results/<cycle>/.
#   snakemake --cores 2                                 the cycles of config/workflow.yaml
#   snakemake --cores 2 --config cycles=1 lead_hours=72 one 3-day cycle
#   snakemake --profile hpc/slurm                        cluster (MPI forecast via srun)
# Options: config/workflow.yaml (schema workflow/schemas/workflow.schema.json); the run itself is
# the aqforecast configuration named by `aqf_config`, validated by the exported JSON Schema
# (workflow/schemas/config.schema.json, `aqforecast schema`) and aqforecast's own models.

configfile: "config/workflow.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/check.smk"
include: "workflow/rules/emissions.smk"
include: "workflow/rules/observations.smk"
include: "workflow/rules/assimilation.smk"
include: "workflow/rules/inversion.smk"
include: "workflow/rules/forecast.smk"
include: "workflow/rules/scenarios.smk"
include: "workflow/rules/products.smk"
include: "workflow/rules/verification.smk"
include: "workflow/rules/bias_correction.smk"
include: "workflow/rules/bulletin.smk"


rule all:
    """Every cycle's products, bulletin, scenario scores, plan and verification (+ the station
    bias correction and its verification with the option bias_correct)."""
    input:
        all_outputs(),
