rule bulletin:
    """The morning page: one self-contained HTML file from the cycle's products."""
    input:
        products=rules.products.output,
    output:
        str(RESULTS / "bulletin" / "index.html"),
    log:
        str(RESULTS / "logs" / "bulletin.log"),
    params:
        run=str(RESULTS / "forecast"),
        products=str(RESULTS / "products"),
        out=str(RESULTS / "bulletin"),
    shell:
        "aqforecast bulletin --forecast {params.run} --products {params.products} "
        "--out {params.out} > {log} 2>&1"
