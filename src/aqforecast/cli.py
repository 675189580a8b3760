"""The ``aqforecast`` command: one subcommand per workflow stage.

Run ``aqforecast --help`` or ``aqforecast <command> --help``. Errors in the configuration or in
input files end the command with exit status 2 and a message naming the file and field.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__

log = logging.getLogger("aqforecast")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="run configuration (YAML), e.g. config/config.yaml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aqforecast",
        description="Air-quality forecasting and source apportionment: the daily cycle's stages.")
    parser.add_argument("--version", action="version", version=f"aqforecast {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("init", help="write a config on the grid(s) of a WRF run",
                       description="Write CONFIG (YAML) whose domains are the WRF grids of "
                                   "FILE (the outermost domain) and of each --nest file: "
                                   "projection (MAP_PROJ 1 Lambert, 2 polar stereographic, 3 "
                                   "Mercator), dx, size and placement, eta levels, start and "
                                   "lead from Times, met paths; species and chemistry of the "
                                   "sample case, no emissions, no regions, tags off. Check it "
                                   "with `aqforecast validate CONFIG`.")
    p.add_argument("--from-wrfout", required=True, metavar="FILE",
                   help="wrfout file (or quoted glob of files) of the outermost domain")
    p.add_argument("--nest", action="append", default=[], metavar="FILE",
                   help="wrfout file of a nest (repeat for each nest; its I_PARENT_START, "
                        "J_PARENT_START, PARENT_GRID_RATIO and PARENT_ID place it)")
    p.add_argument("--window", type=int, nargs=4, default=None,
                   metavar=("I0", "J0", "NX", "NY"),
                   help="keep NX x NY cells of the outermost grid from its 0-based cell "
                        "(I0, J0) (nests must lie inside with one cell to spare)")
    p.add_argument("--out", required=True, metavar="CONFIG", help="config file to write")

    p = sub.add_parser("validate", help="check a configuration file and print a summary",
                       description="Validate CONFIG (keys, units, ranges, nests, CFL) and the "
                                   "inputs it names (met files readable, on the grid, covering "
                                   "the whole run without gaps; inventory; boundary file; "
                                   "scaling table), and print a summary.")
    _add_config(p)
    p.add_argument("--config-only", action="store_true",
                   help="check the configuration file alone, not the input files")

    p = sub.add_parser("grid", help="write CF grid files for every domain",
                       description="Write DIR/grid_<domain>.nc (CF-1.10: lon/lat, crs, map "
                                   "factors, cell areas) for every domain in CONFIG.")
    _add_config(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")

    p = sub.add_parser("forecast", help="run the nested forecast (MPI-aware)",
                       description="Run both domains (parent and 1 km nest) to the lead and "
                                   "write DIR/conc_<domain>.nc, DIR/tags_<domain>.nc, "
                                   "DIR/budget_<domain>.csv and restart files. Launch with "
                                   "`mpiexec -n N aqforecast forecast ...` for N ranks.")
    _add_config(p)
    p.add_argument("--lead-hours", type=int, default=None, metavar="H",
                   help="forecast length in hours (default: the config's time.lead_hours)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--start", default=None, metavar="YYYY-MM-DDTHH",
                   help="cycle start (UTC), overriding the config's time.start")
    p.add_argument("--initial", default=None, metavar="DIR",
                   help="start from DIR/initial_<domain>.nc (an analysis, or any "
                        "RUN/restart/<YYYY-MM-DDTHH>/), valid at the start")
    p.add_argument("--scaling", default=None, metavar="FILE",
                   help="emission scaling table (CSV or NetCDF: region, sector, pollutant, "
                        "factor[, start, end]); overrides inputs.emissions.scaling")
    p.add_argument("--resume", action="store_true",
                   help="continue from DIR/restart/ after an interruption")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the outputs of another run in --out (without it such a "
                        "directory is refused)")
    p.add_argument("--no-tags", action="store_true", help="run without source tagging")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("emissions", help="check the cycle's inventory and write its totals",
                       description="Read the configured inventory with the forecast's readers "
                                   "and write DIR/emission_totals.csv: Mg per region x sector x "
                                   "pollutant over the cycle in the outer domain, base and "
                                   "with the scaling table, and _SUCCESS.")
    _add_config(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--scaling", default=None, metavar="FILE",
                   help="emission scaling table (as forecast --scaling)")
    p.add_argument("--start", default=None, metavar="YYYY-MM-DDTHH", help="cycle start (UTC)")
    p.add_argument("--lead-hours", type=int, default=None, metavar="H", help="cycle length, h")

    p = sub.add_parser("observations", help="gather, QC and write the cycle's station "
                                            "observations (obs.nc)",
                       description="Read every inputs.observations.sources file, keep the "
                                   "hourly means of the assimilation window before the cycle, "
                                   "flag bad values (QC), and write DIR/obs.nc (CF, station x "
                                   "time, QC flag variables) and DIR/_SUCCESS.")
    _add_config(p)
    p.add_argument("--cycle", required=True, metavar="YYYY-MM-DDTHH",
                   help="the cycle (analysis) time, UTC")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--window-hours", type=int, default=None, metavar="H",
                   help="gather the H hours before the cycle (default: "
                        "inputs.observations.window_hours; 24 to verify a whole day)")

    p = sub.add_parser("verify", help="score a finished forecast against observations",
                       description="Pair the forecast of RUN (hourly surface values at each "
                                   "observing station) with OBS (obs.nc or a generic CSV) and "
                                   "write DIR/skill.csv (pollutant x station x lead day: NMB, "
                                   "NME, RMSE, r, exceedance and AQI-category scores), "
                                   "summary.csv (per lead day, all stations and per city, with "
                                   "polluted-day POD/FAR/CSI), "
                                   "paired.csv and _SUCCESS.")
    _add_config(p)
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="a finished forecast run")
    p.add_argument("--obs", required=True, metavar="OBS", help="obs.nc or a generic CSV")
    p.add_argument("--corrected", default=None, metavar="BIAS_DIR",
                   help="an `aqforecast bias-correct` directory of RUN: score its corrected "
                        "station series (corrected.csv) instead of the raw forecast")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")

    p = sub.add_parser("bias-correct", help="Kalman-filter station bias correction of a run",
                       description="Learn each station's bias per pollutant and lead hour from "
                                   "earlier verifications (Kalman-filter predictor of Delle "
                                   "Monache et al. 2006; pairs valid before RUN's start only; "
                                   "verification.withheld_stations never learn: they take the "
                                   "bias of the nearest learning station) and correct RUN's "
                                   "station forecasts: DIR/bias_state.csv (the next --state), "
                                   "corrected.csv, with --obs DIR/verification/ as `aqforecast "
                                   "verify` writes it, and _SUCCESS.")
    _add_config(p)
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="the forecast to correct")
    p.add_argument("--history", nargs="*", default=[], metavar="DIR",
                   help="`aqforecast verify` directories of earlier cycles (their paired.csv)")
    p.add_argument("--state", default=None, metavar="FILE",
                   help="the previous cycle's bias_state.csv (default: start from no bias)")
    p.add_argument("--obs", default=None, metavar="OBS",
                   help="obs.nc or generic CSV: also verify the corrected forecast")
    p.add_argument("--ratio", type=float, default=None, metavar="R",
                   help="sigma_eta^2 / sigma_eps^2 of the filter (default 0.01)")
    p.add_argument("--transfer", choices=("nearest", "mean"), default="nearest",
                   help="bias for withheld stations and stations without one: the nearest "
                        "learning station's (default) or the mean over them")
    p.add_argument("--form", choices=("additive", "multiplicative"), default="additive",
                   help="the bias learned: forecast - observed (default) or ln((forecast + c) "
                        "/ (observed + c)), a correction that scales with the forecast")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")

    p = sub.add_parser("assimilate", help="analyse the initial state from observations",
                       description="Correct a background run's state at T with station "
                                   "observations (optimal interpolation) and write "
                                   "DIR/initial_<domain>.nc (valid at T, for forecast "
                                   "--initial), increments, innovations.csv, statistics.csv.")
    _add_config(p)
    p.add_argument("--background", required=True, metavar="RUN_DIR",
                   help="forecast run directory whose restart/<T>/ holds the background")
    p.add_argument("--obs", required=True, metavar="OBS",
                   help="obs.nc of `aqforecast observations`, or a generic station CSV")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--time", default=None, metavar="YYYY-MM-DDTHH",
                   help="analysis time (default: the background run's latest restart)")
    p.add_argument("--method", choices=["oi", "letkf"], default=None,
                   help="analysis method (default: assimilation.method)")
    p.add_argument("--satellite", default=None, metavar="FILE",
                   help="TROPOMI NO2 superobservations (satellite_no2.nc of the observation "
                        "stage; default: the one beside OBS, if any)")
    p.add_argument("--inflation-prior", default=None, metavar="DIR|FILE",
                   help="with assimilation.inflation_adaptive: the previous analysis "
                        "directory (or its inflation.json) whose inflation per domain and "
                        "quantity is this analysis' prior (default: assimilation.inflation for "
                        "the LETKF, 1 for the OI's B)")

    p = sub.add_parser("ensemble", help="perturbed-emission (and initial-state) members "
                                        "around a forecast run",
                       description="Rerun the control run of RUN_DIR N times with emissions "
                                   "scaled by lognormal factors (inversion.sigma_ln) per region "
                                   "x sector x pollutant and, with --ic-sigma, the initial "
                                   "state times smooth centred lognormal random fields, into "
                                   "RUN_DIR/ensemble/m<NN>/ (the layout of assimilate --method "
                                   "letkf), through dask.")
    _add_config(p)
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="the control forecast run")
    p.add_argument("--members", type=int, default=8, metavar="N", help="number of members")
    p.add_argument("--workers", type=int, default=1, metavar="W",
                   help="dask worker processes (1: one member after another)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the perturbations")
    p.add_argument("--ic-sigma", default=None, metavar="X|background",
                   help="perturb the members' initial state: sigma of ln(factor) of every "
                        "analysed quantity (a smooth field, correlation scale sqrt(3/10) "
                        "assimilation.length_km, centred over the members, through the mixed "
                        "and residual layer), or 'background': sqrt(ln(1 + background_error^2)) "
                        "per quantity (default: assimilation.ensemble_ic_sigma, none)")
    p.add_argument("--initial", default=None, metavar="DIR",
                   help="the control's initial state (initial_<domain>.nc at its start; "
                        "default: RUN_DIR/restart/<start>/, or the cold/warm start rebuilt)")
    p.add_argument("--no-emission-perturbation", dest="emissions", action="store_false",
                   default=None, help="initial-state perturbations only (default: "
                                      "assimilation.ensemble_emissions)")
    p.add_argument("--cluster", default=None, metavar="KIND",
                   help="where the members run: local (default; --workers processes), slurm, "
                        "pbs, sge or lsf (dask-jobqueue; --workers jobs configured in dask's "
                        "jobqueue.<kind> section, e.g. hpc/dask/jobqueue.yaml via DASK_CONFIG), "
                        "or a dask scheduler address tcp://host:port")

    p = sub.add_parser("scenario", help="score an emission-reduction scenario (YAML)",
                       description="City and station daily changes (PM2.5, PM10, NO2, SO2, CO "
                                   "daily means, O3 MDA8, AQI) of an emission scenario against "
                                   "a base run: DIR/scores.csv, exceedances.csv (days over the "
                                   "standard avoided), measures.csv, scaling.csv, timings.csv. "
                                   "Several --scenario files: DIR/<name>/ each and "
                                   "DIR/summary.csv.")
    _add_config(p)
    p.add_argument("--run", required=True, metavar="BASE_RUN", help="the base forecast run")
    p.add_argument("--scenario", required=True, action="append", metavar="FILE",
                   help="scenario YAML (repeat to score several: DIR/<scenario name>/ each, "
                        "brute-force reruns in parallel through dask)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--workers", type=int, default=1, metavar="W",
                   help="dask worker processes for the brute-force reruns (1: one after "
                        "another)")
    p.add_argument("--cluster", default=None, metavar="KIND",
                   help="where the reruns run, as `aqforecast ensemble --cluster`: local "
                        "(default), slurm, pbs, sge, lsf or a scheduler address tcp://host:port")
    p.add_argument("--posterior", default=None, metavar="SCALING",
                   help="a later cycle's inverted inventory (invert's scaling.csv): also score "
                        "the scenario on it (DIR/posterior/, DIR/pre_post.csv; methods tags, "
                        "brute)")
    p.add_argument("--method", choices=["tags", "response", "brute"], default="tags",
                   help="tags: linear from the base run's source tags (seconds); response: "
                        "quadratic response surface from cached perturbed runs per region x "
                        "precursor (BASE_RUN/response/); brute: rerun the forecast with the "
                        "scaled emissions (DIR/run/)")

    p = sub.add_parser("plan", help="least-cost set of emission cuts meeting a target",
                       description="Solve the least-cost combination of the target file's "
                                   "candidate measures that keeps the limited city statistics "
                                   "within bounds (--model: linear from the base run's tags, "
                                   "or the response surface), write optimal_plan.yaml, "
                                   "plan.csv, limits.csv, timings.csv and verify it with a "
                                   "brute-force rerun (verify.csv).")
    _add_config(p)
    p.add_argument("--run", required=True, metavar="BASE_RUN", help="the base forecast run")
    p.add_argument("--target", required=True, metavar="FILE", help="target YAML")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--no-verify", action="store_true", help="skip the brute-force rerun")
    p.add_argument("--model", choices=["linear", "response"], default="linear",
                   help="linear: from the base run's tags, solved with linprog; response: the "
                        "response surface of cached perturbed runs (BASE_RUN/response/), "
                        "solved with SLSQP")
    p.add_argument("--workers", type=int, default=1, metavar="W",
                   help="dask worker processes for missing perturbed runs (--model response)")
    p.add_argument("--cluster", default=None, metavar="KIND",
                   help="where those runs run, as `aqforecast ensemble --cluster`")

    p = sub.add_parser("invert", help="Kalman-filter emission inversion (daily cycle)",
                       description="Estimate ln(emission scaling factors) per region x sector "
                                   "x pollutant from the observations and a tagged prior run; "
                                   "write DIR/scaling.csv (the forecast's --scaling table with "
                                   "sigma_ln), scaling.nc, inversion_report.csv, "
                                   "hotspots_emission.csv.")
    _add_config(p)
    p.add_argument("--run", required=True, metavar="PRIOR_RUN",
                   help="the prior forecast run (tags on; made with the prior factors or "
                        "with yesterday's posterior: its tags are rescaled to the prior)")
    p.add_argument("--obs", required=True, metavar="OBS", help="obs.nc or a generic CSV")
    p.add_argument("--prior-scaling", default=None, metavar="FILE",
                   help="yesterday's posterior scaling.csv (factor, sigma_ln; the "
                        "scaling.nc next to it gives the full covariance); default: the base "
                        "inventory")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--jacobian", choices=["tags", "fd"], default="tags",
                   help="tags: the prior run's source tags (no extra run); fd: one perturbed "
                        "forecast per factor, reported against the tags")

    p = sub.add_parser("met-from-stations", help="analysed-met wrfout files from station "
                                                 "observations (hindcasts without WRF)",
                       description="Objective analysis (two-pass Barnes) of hourly station "
                                   "wind, temperature, pressure, dew point and rain onto every "
                                   "domain, a diagnosed boundary layer (AERMET scheme) and "
                                   "hydrostatic columns, written as daily wrfout files that "
                                   "the forecast reads (README, Hindcast).")
    _add_config(p)
    p.add_argument("--stations", required=True, nargs="+", metavar="CSV",
                   help="hourly station files (PRSA layout: TEMP, PRES, DEWP, RAIN, wd, WSPM)")
    p.add_argument("--coords", default=None, metavar="CSV",
                   help="station table (default: inputs.observations.station_coords)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--start", default=None, metavar="YYYY-MM-DDTHH",
                   help="first record, UTC (default: time.start)")
    p.add_argument("--hours", type=int, default=None, metavar="N",
                   help="hourly records (default: time.lead_hours + 2)")
    p.add_argument("--urban", action="append", default=[], metavar="LON,LAT,KM",
                   help="urban land use within KM of (LON, LAT); repeatable")
    p.add_argument("--length-km", type=float, default=None, help="Barnes length scale (20)")
    p.add_argument("--bowen", type=float, default=None, help="Bowen ratio (1.5, winter)")
    p.add_argument("--aerosol-dimming", action="store_true",
                   help="dim the insolation by the aerosol optical depth of the stations' PM2.5 "
                        "(Beer-Lambert direct beam; README, Hindcast)")
    p.add_argument("--aerosol-exclude", nargs="*", default=None, metavar="STATION",
                   help="stations whose PM2.5 the dimming does not use (default: "
                        "verification.withheld_stations)")

    p = sub.add_parser("bulletin", help="the morning bulletin: one self-contained HTML page",
                       description="Write DIR/index.html (images beside it in DIR/img/) from "
                                   "the cycle's files: headline, city tables by lead window "
                                   "and by day, maps, source shares by region x sector, and "
                                   "the analysis, inversion, plan and verification where "
                                   "given.")
    p.add_argument("--forecast", required=True, metavar="RUN", help="the forecast run")
    p.add_argument("--products", required=True, metavar="DIR", help="its products")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--analysis", default=None, metavar="DIR", help="aqforecast assimilate output")
    p.add_argument("--inversion", default=None, metavar="DIR", help="aqforecast invert output")
    p.add_argument("--plan", default=None, metavar="DIR", help="aqforecast plan output")
    p.add_argument("--config", default=None, metavar="CONFIG",
                   help="the cycle's config: city outlines for the lead-window rows of the "
                        "city table, met and inventory for the headline")
    p.add_argument("--verification", default=None, metavar="DIR",
                   help="aqforecast verify output (yesterday's forecast against observations)")
    p.add_argument("--previous-inversion", default=None, metavar="DIR",
                   help="yesterday's aqforecast invert output: what changed since")
    p.add_argument("--scenarios", nargs="+", default=(), metavar="DIR",
                   help="aqforecast scenario outputs: measures, tonnes, cost and the largest "
                        "city change of each")

    p = sub.add_parser("products", help="AQI tables, CF products, maps, receptors, hot spots",
                       description="Turn a forecast directory (conc_<domain>.nc, tags_<domain>.nc) "
                                   "into hourly and lead-window CF products, daily AQI tables per "
                                   "city and station (HJ 633 in force on the date), maps per lead "
                                   "day, source-receptor tables and hot-spot lists.")
    _add_config(p)
    p.add_argument("--run", required=True, metavar="DIR", help="forecast output directory")
    p.add_argument("--out", required=True, metavar="DIR", help="products directory")
    p.add_argument("--max-map-days", type=int, default=None, metavar="N",
                   help="maps for the first N lead days only (default: all)")
    p.add_argument("--no-maps", action="store_true", help="skip the PNG maps")

    p = sub.add_parser("schema", help="write the JSON Schema of the configuration",
                       description="Write the JSON Schema generated from the config models.")
    p.add_argument("--out", default="workflow/schemas/config.schema.json", metavar="FILE")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .log import setup_logging

    setup_logging(args.verbose)
    from .config import ConfigError
    from .io import InputFileError

    from .parallel import abort_all
    from .transport.model import ModelStateError

    try:
        return _dispatch(args)
    except (ConfigError, InputFileError, ModelStateError) as exc:
        sys.stderr.write(f"aqforecast {args.command}: error:\n{exc}\n")
        abort_all(2)  # under MPI: end every rank, not only this one
        return 2
    except BaseException:
        import traceback

        traceback.print_exc()
        abort_all(1)
        raise


def _dispatch(args) -> int:
    from . import stages
    from .config import ConfigError

    if args.command == "init":
        from .io.wrf_init import write_config_from_wrfout

        out = write_config_from_wrfout(args.from_wrfout, args.nest, args.window, args.out)
        sys.stdout.write(f"{out}\n")
    elif args.command == "validate":
        _, summary = stages.validate(args.config, inputs=not args.config_only)
        sys.stdout.write(summary + "\n")
    elif args.command == "grid":
        for p in stages.write_grids(args.config, args.out):
            sys.stdout.write(f"{p}\n")
    elif args.command == "forecast":
        from .forecast import run_forecast

        if args.resume and args.initial:
            raise ConfigError("forecast: --resume continues a run from its own restart; it "
                              "cannot be combined with --initial")
        for p in run_forecast(args.config, args.lead_hours, args.out, resume=args.resume,
                              tags=not args.no_tags, progress=not args.no_progress,
                              start=args.start, initial=args.initial, scaling=args.scaling,
                              overwrite=args.overwrite):
            sys.stdout.write(f"{p}\n")
    elif args.command == "observations":
        for p in stages.observations(args.config, args.cycle, args.out, args.window_hours):
            sys.stdout.write(f"{p}\n")
    elif args.command == "emissions":
        for p in stages.emissions(args.config, args.out, args.scaling, args.start,
                                  args.lead_hours):
            sys.stdout.write(f"{p}\n")
    elif args.command == "verify":
        for p in stages.verify(args.config, args.run, args.obs, args.out, args.corrected):
            sys.stdout.write(f"{p}\n")
    elif args.command == "bias-correct":
        for p in stages.bias_correct(args.config, args.run, args.history, args.out, args.state,
                                     args.obs, args.ratio, args.transfer, args.form):
            sys.stdout.write(f"{p}\n")
    elif args.command == "assimilate":
        for p in stages.assimilate(args.config, args.background, args.obs, args.out,
                                   args.time, args.method, args.satellite,
                                   args.inflation_prior):
            sys.stdout.write(f"{p}\n")
    elif args.command == "ensemble":
        for p in stages.ensemble(args.config, args.run, args.members, args.workers, args.seed,
                                  args.cluster, ic_sigma=args.ic_sigma, initial=args.initial,
                                  emissions=args.emissions):
            sys.stdout.write(f"{p}\n")
    elif args.command == "scenario":
        for p in stages.scenario(args.config, args.run, args.scenario, args.out, args.method,
                                 workers=args.workers, cluster=args.cluster,
                                 posterior=args.posterior):
            sys.stdout.write(f"{p}\n")
    elif args.command == "plan":
        for p in stages.plan(args.config, args.run, args.target, args.out,
                             verify=not args.no_verify, model=args.model,
                             workers=args.workers, cluster=args.cluster):
            sys.stdout.write(f"{p}\n")
    elif args.command == "invert":
        for p in stages.invert(args.config, args.run, args.obs, args.out, args.prior_scaling,
                               args.jacobian):
            sys.stdout.write(f"{p}\n")
    elif args.command == "met-from-stations":
        urban = []
        for item in args.urban:
            try:
                lon, lat, km = (float(x) for x in item.split(","))
            except ValueError:
                raise ConfigError(f"--urban {item!r}: expected LON,LAT,KM") from None
            urban.append((lon, lat, km))
        for p in stages.met_from_stations(args.config, args.stations, args.out, args.coords,
                                          args.start, args.hours, urban, args.length_km,
                                          args.bowen, aerosol_dimming=args.aerosol_dimming,
                                          aerosol_exclude=args.aerosol_exclude):
            sys.stdout.write(f"{p}\n")
    elif args.command == "bulletin":
        for p in stages.bulletin(args.forecast, args.products, args.out, args.analysis,
                                 args.inversion, args.plan, config=args.config,
                                 verification=args.verification,
                                 previous_inversion=args.previous_inversion,
                                 scenarios=args.scenarios):
            sys.stdout.write(f"{p}\n")
    elif args.command == "products":
        for p in stages.products(args.config, args.run, args.out, args.max_map_days,
                                 maps=not args.no_maps):
            sys.stdout.write(f"{p}\n")
    elif args.command == "schema":
        sys.stdout.write(f"{stages.write_schema(args.out)}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
