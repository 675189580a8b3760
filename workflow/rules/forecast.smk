rule forecast:
    """Nested forecast from the cycle time to its lead, with tags; warm cycles start from their
    analysis with the posterior inventory. MPI when the profile gives mpi_ranks > 1."""
    conda:
        CONDA_ENV
    input:
        config=AQF_CONFIG,
        grids=expand(R("{{cycle}}", "grid", "grid_{domain}.nc"), domain=DOMAINS),
        emissions=R("{cycle}", "emissions", "emission_totals.csv"),
        met=met_files(),
        initial=_initial,
        scaling=lambda w: posterior(w.cycle),
    output:
        expand(R("{{cycle}}", "forecast", "conc_{domain}.nc"), domain=DOMAINS),
        R("{cycle}", "forecast", "_SUCCESS"),
    log:
        R("{cycle}", "logs", "forecast.log"),
    benchmark:
        R("{cycle}", "benchmarks", "forecast.tsv")
    threads: workflow.cores
    resources:
        mpi=MPI_LAUNCH,
        tasks=MPI_RANKS,
        runtime=240,
        mem_mb=16000,
    params:
        out=lambda w: R(w.cycle, "forecast"),
        launch=lambda w, resources: mpi_prefix(resources.tasks, resources.mpi),
        lead=lambda w: lead(w.cycle),
        start=lambda w: iso(w.cycle),
        initial=lambda w: f"--initial {R(w.cycle, 'analysis')}" if warm(w.cycle) else "",
        scaling=lambda w, input: f"--scaling {input.scaling}" if input.scaling else "",
    shell:
        "{params.launch}aqforecast forecast {input.config} --start {params.start} "
        "--lead-hours {params.lead} {params.initial} {params.scaling} --out {params.out} "
        "--overwrite --no-progress > {log} 2>&1"
