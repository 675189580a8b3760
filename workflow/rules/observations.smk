rule observations:
    """Station observations of the assimilation window before the cycle, QC-flagged: obs.nc."""
    conda:
        CONDA_ENV
    input:
        config=AQF_CONFIG,
        sources=observation_files(),
    output:
        R("{cycle}", "observations", "obs.nc"),
    log:
        R("{cycle}", "logs", "observations.log"),
    benchmark:
        R("{cycle}", "benchmarks", "observations.tsv")
    params:
        out=lambda w: R(w.cycle, "observations"),
        cycle=lambda w: iso(w.cycle),
    resources:
        runtime=10,
    shell:
        "aqforecast observations {input.config} --cycle {params.cycle} --out {params.out} "
        "> {log} 2>&1"


rule observations_day:
    """The day of observations before the cycle, for the verification of the previous cycle."""
    conda:
        CONDA_ENV
    input:
        config=AQF_CONFIG,
        sources=observation_files(),
    output:
        R("{cycle}", "verification", "obs", "obs.nc"),
    log:
        R("{cycle}", "logs", "observations_day.log"),
    benchmark:
        R("{cycle}", "benchmarks", "observations_day.tsv")
    params:
        out=lambda w: R(w.cycle, "verification", "obs"),
        cycle=lambda w: iso(w.cycle),
        window=config["verification_window_hours"],
    resources:
        runtime=10,
    shell:
        "aqforecast observations {input.config} --cycle {params.cycle} --out {params.out} "
        "--window-hours {params.window} > {log} 2>&1"
