rule met_check:
    """The configuration and every input it names (met coverage of the cycle, inventory,
    boundary file, scaling table): `aqforecast validate`; nothing runs on a bad input."""
    conda:
        CONDA_ENV
    input:
        config=AQF_CONFIG,
        met=met_files(),
        emissions=emission_files(),
        static=static_files(),
    output:
        R("{cycle}", "check", "validate.txt"),
    log:
        R("{cycle}", "logs", "met_check.log"),
    benchmark:
        R("{cycle}", "benchmarks", "met_check.tsv")
    resources:
        runtime=10,
    shell:
        "aqforecast validate {input.config} > {output}.tmp 2> {log} && mv {output}.tmp {output}"


rule grid:
    """CF grid files (lon/lat with bounds, crs, map factors, areas) for every domain."""
    conda:
        CONDA_ENV
    input:
        AQF_CONFIG,
    output:
        expand(R("{{cycle}}", "grid", "grid_{domain}.nc"), domain=DOMAINS),
    log:
        R("{cycle}", "logs", "grid.log"),
    benchmark:
        R("{cycle}", "benchmarks", "grid.tsv")
    params:
        out=lambda w: R(w.cycle, "grid"),
    resources:
        runtime=10,
    shell:
        "aqforecast grid {input} --out {params.out} > {log} 2>&1"
