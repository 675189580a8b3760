rule assimilate:
    """Analysis of the initial state at the cycle time from the window's observations
    (OI or LETKF), on the previous cycle's forecast as background."""
    conda:
        CONDA_ENV
    input:
        config=AQF_CONFIG,
        background=_background,
        obs=R("{cycle}", "observations", "obs.nc"),
    output:
        expand(R("{{cycle}}", "analysis", "initial_{domain}.nc"), domain=DOMAINS),
    log:
        R("{cycle}", "logs", "assimilate.log"),
    benchmark:
        R("{cycle}", "benchmarks", "assimilate.tsv")
    params:
        background=lambda w: R(previous(w.cycle), "forecast"),
        out=lambda w: R(w.cycle, "analysis"),
        time=lambda w: iso(w.cycle),
        method=("--method " + config["assimilation_method"]) if config.get(
            "assimilation_method") else "",
    resources:
        runtime=30,
    shell:
        "aqforecast assimilate {input.config} --background {params.background} "
        "--obs {input.obs} --out {params.out} --time {params.time} {params.method} > {log} 2>&1"
