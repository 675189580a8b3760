rule scenario:
    """City AQI changes of one emission scenario (YAML) against the cycle's forecast."""
    conda:
        CONDA_ENV
    input:
        config=AQF_CONFIG,
        forecast=R("{cycle}", "forecast", "_SUCCESS"),
        scenario=lambda w: SCENARIOS[w.scenario],
    output:
        R("{cycle}", "scenarios", "{scenario}", "scores.csv"),
        R("{cycle}", "scenarios", "{scenario}", "measures.csv"),
    log:
        R("{cycle}", "logs", "scenario_{scenario}.log"),
    benchmark:
        R("{cycle}", "benchmarks", "scenario_{scenario}.tsv")
    params:
        run=lambda w: R(w.cycle, "forecast"),
        out=lambda w: R(w.cycle, "scenarios", w.scenario),
        method=config["scenario_method"],
    resources:
        runtime=60,
    shell:
        "aqforecast scenario {input.config} --run {params.run} --scenario {input.scenario} "
        "--out {params.out} --method {params.method} > {log} 2>&1"


rule plan:
    """The least-cost set of cuts meeting the target, verified by a rerun (plan_verify)."""
    conda:
        CONDA_ENV
    input:
        config=AQF_CONFIG,
        forecast=R("{cycle}", "forecast", "_SUCCESS"),
        target=TARGET or [],
    output:
        R("{cycle}", "plan", "plan.csv"),
        R("{cycle}", "plan", "optimal_plan.yaml"),
    log:
        R("{cycle}", "logs", "plan.log"),
    benchmark:
        R("{cycle}", "benchmarks", "plan.tsv")
    params:
        run=lambda w: R(w.cycle, "forecast"),
        out=lambda w: R(w.cycle, "plan"),
        verify="" if config["plan_verify"] else "--no-verify",
    threads: workflow.cores
    resources:
        runtime=240,
    shell:
        "aqforecast plan {input.config} --run {params.run} --target {input.target} "
        "--out {params.out} {params.verify} > {log} 2>&1"
