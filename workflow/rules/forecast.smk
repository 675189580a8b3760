rule forecast:
    """Nested 3 km -> 1 km forecast to the configured lead, with tags; MPI when the profile
    gives mpi_ranks > 1 (hpc/slurm/config.yaml)."""
    input:
        config=AQF_CONFIG,
        grids=rules.grid.output,
    output:
        expand(str(RESULTS / "forecast" / "conc_{domain}.nc"), domain=DOMAINS),
    log:
        str(RESULTS / "logs" / "forecast.log"),
    threads: workflow.cores
    resources:
        mpi=MPI_RANKS,
        runtime=120,
    params:
        out=str(RESULTS / "forecast"),
        launch=mpi_prefix(MPI_RANKS),
        lead=LEAD_HOURS,
    shell:
        "{params.launch}aqforecast forecast {input.config} --lead-hours {params.lead} "
        "--out {params.out} --overwrite > {log} 2>&1"
