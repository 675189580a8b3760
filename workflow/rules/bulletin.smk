rule bulletin:
    """The morning page: one self-contained HTML file from the cycle's files."""
    conda:
        CONDA_ENV
    input:
        unpack(_bulletin_inputs),
    output:
        R("{cycle}", "bulletin", "index.html"),
    log:
        R("{cycle}", "logs", "bulletin.log"),
    benchmark:
        R("{cycle}", "benchmarks", "bulletin.tsv")
    params:
        run=lambda w: R(w.cycle, "forecast"),
        products=lambda w: R(w.cycle, "products"),
        out=lambda w: R(w.cycle, "bulletin"),
        options=_bulletin_options,
    resources:
        runtime=10,
    shell:
        "aqforecast bulletin --forecast {params.run} --products {params.products} "
        "--out {params.out} {params.options} > {log} 2>&1"
