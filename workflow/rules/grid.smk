rule grid:
    """CF grid files (lon/lat, crs, map factors, areas) for every domain."""
    input:
        AQF_CONFIG,
    output:
        expand(str(RESULTS / "grid" / "grid_{domain}.nc"), domain=DOMAINS),
    log:
        str(RESULTS / "logs" / "grid.log"),
    params:
        out=str(RESULTS / "grid"),
    shell:
        "aqforecast grid {input} --out {params.out} > {log} 2>&1"
