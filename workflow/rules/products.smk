rule products:
    """AQI tables (HJ 633 colours), lead-window CF NetCDF, maps, receptor tables, hot spots."""
    conda:
        CONDA_ENV
    input:
        config=AQF_CONFIG,
        forecast=R("{cycle}", "forecast", "_SUCCESS"),
    output:
        R("{cycle}", "products", "_SUCCESS"),
    log:
        R("{cycle}", "logs", "products.log"),
    benchmark:
        R("{cycle}", "benchmarks", "products.tsv")
    params:
        run=lambda w: R(w.cycle, "forecast"),
        out=lambda w: R(w.cycle, "products"),
        maps=(f"--max-map-days {config['max_map_days']}"
              if config.get("max_map_days") is not None else ""),
    resources:
        runtime=30,
    shell:
        "aqforecast products {input.config} --run {params.run} --out {params.out} {params.maps} "
        "> {log} 2>&1"
