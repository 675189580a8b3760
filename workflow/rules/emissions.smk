rule emissions:
    """The cycle's inventory, read and checked with the forecast's readers: Mg per region x
    sector x pollutant over the cycle, base and with the posterior scaling."""
    conda:
        CONDA_ENV
    input:
        config=AQF_CONFIG,
        check=R("{cycle}", "check", "validate.txt"),
        inventory=emission_files(),
        scaling=lambda w: posterior(w.cycle),
    output:
        R("{cycle}", "emissions", "emission_totals.csv"),
    log:
        R("{cycle}", "logs", "emissions.log"),
    benchmark:
        R("{cycle}", "benchmarks", "emissions.tsv")
    params:
        out=lambda w: R(w.cycle, "emissions"),
        start=lambda w: iso(w.cycle),
        lead=lambda w: lead(w.cycle),
        scaling=lambda w, input: f"--scaling {input.scaling}" if input.scaling else "",
    resources:
        runtime=10,
    shell:
        "aqforecast emissions {input.config} --out {params.out} --start {params.start} "
        "--lead-hours {params.lead} {params.scaling} > {log} 2>&1"
