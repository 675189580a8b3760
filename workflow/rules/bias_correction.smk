rule bias_correct:
    """Kalman-filter station bias correction of the cycle's forecast (`aqforecast bias-correct`,
    Delle Monache et al. 2006 / Kang et al. 2008), on with the workflow option bias_correct: the
    filter learns from every warm cycle's verification so far (paired.csv of the previous
    forecasts against the observations before this cycle; each pair once, withheld stations
    never) starting from the previous cycle's bias_state.csv, and corrects this cycle's station
    series (corrected.csv). The DAG verifies the window before each cycle (lead day 1 of the
    previous forecast with verification_window_hours=24), so later lead hours learn only when
    the window is longer; hours without a learned bias are left uncorrected."""
    conda:
        CONDA_ENV
    input:
        config=AQF_CONFIG,
        forecast=R("{cycle}", "forecast", "_SUCCESS"),
        history=_bias_history,
        state=_bias_state,
    output:
        R("{cycle}", "bias_correction", "bias_state.csv"),
        R("{cycle}", "bias_correction", "corrected.csv"),
        R("{cycle}", "bias_correction", "_SUCCESS"),
    log:
        R("{cycle}", "logs", "bias_correct.log"),
    benchmark:
        R("{cycle}", "benchmarks", "bias_correct.tsv")
    params:
        run=lambda w: R(w.cycle, "forecast"),
        out=lambda w: R(w.cycle, "bias_correction"),
        history=lambda w, input: " ".join(str(Path(f).parent) for f in input.history),
        state=lambda w, input: f"--state {input.state}" if input.state else "",
        ratio=(f"--ratio {config['bias_ratio']}" if config.get("bias_ratio") is not None
               else ""),
        form=f"--form {config.get('bias_form') or 'additive'}",
    resources:
        runtime=10,
    shell:
        "aqforecast bias-correct {input.config} --run {params.run} --history {params.history} "
        "{params.state} {params.ratio} {params.form} --out {params.out} > {log} 2>&1"


rule verification_corrected:
    """Yesterday's bias-corrected forecast against the day of observations before this cycle
    (the same tables as the verification rule, of the corrected station series)."""
    conda:
        CONDA_ENV
    input:
        config=AQF_CONFIG,
        forecast=lambda w: R(previous(w.cycle), "forecast", "_SUCCESS"),
        corrected=lambda w: R(previous(w.cycle), "bias_correction", "_SUCCESS"),
        obs=R("{cycle}", "verification", "obs", "obs.nc"),
    output:
        R("{cycle}", "verification_corrected", "skill.csv"),
        R("{cycle}", "verification_corrected", "summary.csv"),
        R("{cycle}", "verification_corrected", "paired.csv"),
    log:
        R("{cycle}", "logs", "verification_corrected.log"),
    benchmark:
        R("{cycle}", "benchmarks", "verification_corrected.tsv")
    params:
        run=lambda w: R(previous(w.cycle), "forecast"),
        corrected=lambda w: R(previous(w.cycle), "bias_correction"),
        out=lambda w: R(w.cycle, "verification_corrected"),
    resources:
        runtime=10,
    shell:
        "aqforecast verify {input.config} --run {params.run} --corrected {params.corrected} "
        "--obs {input.obs} --out {params.out} > {log} 2>&1"
