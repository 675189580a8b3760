rule invert:
    """Daily Kalman-filter inversion: the previous cycle's tagged forecast as the prior run,
    yesterday's posterior relaxed toward the base as the prior, the window's observations."""
    conda:
        CONDA_ENV
    input:
        config=AQF_CONFIG,
        prior_run=lambda w: R(previous(w.cycle), "forecast", "_SUCCESS"),
        obs=R("{cycle}", "observations", "obs.nc"),
        prior_scaling=_prior_scaling,
    output:
        R("{cycle}", "inversion", "scaling.csv"),
        R("{cycle}", "inversion", "inversion_report.csv"),
    log:
        R("{cycle}", "logs", "invert.log"),
    benchmark:
        R("{cycle}", "benchmarks", "invert.tsv")
    params:
        run=lambda w: R(previous(w.cycle), "forecast"),
        out=lambda w: R(w.cycle, "inversion"),
        prior=lambda w, input: (f"--prior-scaling {input.prior_scaling}"
                                if input.prior_scaling else ""),
        jacobian=config["jacobian"],
    threads: workflow.cores
    resources:
        runtime=30,
    shell:
        "aqforecast invert {input.config} --run {params.run} --obs {input.obs} {params.prior} "
        "--out {params.out} --jacobian {params.jacobian} > {log} 2>&1"
