# aqforecast daily cycle. Thin by design: the stages live in `aqforecast <stage>`; rules only
# wire files together. Run:   snakemake --cores 2                       (local, sample case)
#                             snakemake --profile hpc/slurm             (cluster, MPI forecast)
# The run configuration is validated by aqforecast's own models (the JSON Schema in
# workflow/schemas/ is generated from them); pass another with  --config aqf_config=path.yaml

include: "workflow/rules/common.smk"
include: "workflow/rules/grid.smk"
include: "workflow/rules/forecast.smk"
include: "workflow/rules/products.smk"
include: "workflow/rules/bulletin.smk"


rule all:
    input:
        all_outputs(),
