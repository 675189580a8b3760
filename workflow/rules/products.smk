rule products:
    """AQI tables, lead-window NetCDF products, hot spots, maps and verification."""
    input:
        config=AQF_CONFIG,
        conc=rules.forecast.output,
    output:
        touch(str(RESULTS / "products" / "done.flag")),
    log:
        str(RESULTS / "logs" / "products.log"),
    params:
        run=str(RESULTS / "forecast"),
        out=str(RESULTS / "products"),
    shell:
        "aqforecast products {input.config} --run {params.run} --out {params.out} > {log} 2>&1"
