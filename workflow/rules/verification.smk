rule verification:
    """Yesterday's forecast against the day of observations before this cycle."""
    conda:
        CONDA_ENV
    input:
        config=AQF_CONFIG,
        forecast=lambda w: R(previous(w.cycle), "forecast", "_SUCCESS"),
        obs=R("{cycle}", "verification", "obs", "obs.nc"),
    output:
        R("{cycle}", "verification", "skill.csv"),
        R("{cycle}", "verification", "summary.csv"),
    log:
        R("{cycle}", "logs", "verification.log"),
    benchmark:
        R("{cycle}", "benchmarks", "verification.tsv")
    params:
        run=lambda w: R(previous(w.cycle), "forecast"),
        out=lambda w: R(w.cycle, "verification"),
    resources:
        runtime=10,
    shell:
        "aqforecast verify {input.config} --run {params.run} --obs {input.obs} "
        "--out {params.out} > {log} 2>&1"
