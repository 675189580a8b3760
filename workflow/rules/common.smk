# Shared set-up: the workflow's own options (validated against workflow/schemas/workflow.schema.json),
# the run configuration (validated by the exported JSON Schema and by aqforecast's strict models,
# which also read `NO` as a species, not as YAML 1.1 false), the cycles and the result paths.
#
# Layout: results/<cycle>/{check,grid,emissions,observations,analysis,inversion,forecast,products,
#         verification,scenarios/<name>,plan,bulletin,logs,benchmarks}/ with <cycle> = YYYYMMDDHH;
#         with bias_correct also bias_correction/ (warm cycles) and verification_corrected/
#         (cycles after a corrected one).
# Cycling: cycle k > 0 warm-starts from cycle k-1: the background of its analysis is cycle k-1's
# forecast (its restart at the cycle time), its inversion's prior run is that forecast and its
# prior inventory cycle k-1's posterior; it verifies cycle k-1's forecast against the day of
# observations before it. Cycle 0 starts cold (or from inputs.restart_dir) with the base inventory.
import glob
import json
from datetime import datetime, timedelta
from pathlib import Path

from snakemake.utils import validate

from aqforecast.config import load_config, read_yaml, resolve_path

validate(config, "../schemas/workflow.schema.json")

AQF_CONFIG = config["aqf_config"]
RUN = load_config(AQF_CONFIG)
# the exported schema (`aqforecast schema`) on the file as written (dates as ISO strings)
validate(json.loads(json.dumps(read_yaml(AQF_CONFIG), default=str)),
         "../schemas/config.schema.json", set_default=False)

FIRST = datetime.strptime(str(config.get("cycle") or RUN.time.start.strftime("%Y%m%d%H")),
                          "%Y%m%d%H")
STEP_H = int(config["cycle_step_hours"])
CYCLES = [(FIRST + timedelta(hours=STEP_H * k)).strftime("%Y%m%d%H")
          for k in range(int(config["cycles"]))]
ROOT = Path(config.get("results") or str(RUN.outputs.dir))
DOMAINS = RUN.domain_names
LEAD_HOURS = int(config.get("lead_hours") or RUN.time.lead_hours)
CYCLE_LEAD_HOURS = int(config["cycle_lead_hours"])
MPI_RANKS = int(config["mpi_ranks"])
MPI_LAUNCH = config["mpi_launch"]
HAS_OBS = bool(RUN.inputs.observations.sources) and bool(config["assimilate"])
INVERT = HAS_OBS and bool(config["invert"]) and RUN.tags.enabled
# the station bias correction learns from the verifications, which need observations
BIAS = HAS_OBS and bool(config.get("bias_correct", False))
SCENARIOS = {Path(p).stem: p for p in config["scenarios"]}
TARGET = config.get("target") or None

if CYCLE_LEAD_HOURS < STEP_H and len(CYCLES) > 1:
    raise ValueError(f"cycle_lead_hours={CYCLE_LEAD_HOURS} must reach the next cycle "
                     f"(cycle_step_hours={STEP_H}): its restart is the next background")

CONDA_ENV = "../envs/aqforecast.yaml"

wildcard_constraints:
    cycle=r"\d{10}",
    scenario=r"[A-Za-z0-9_.\-]+",


def R(cycle, *parts):
    """Path under results/<cycle>/."""
    return str(ROOT.joinpath(cycle, *parts))


def index(cycle):
    return CYCLES.index(cycle)


def previous(cycle):
    """The cycle before ``cycle``, or None for the first."""
    k = index(cycle)
    return CYCLES[k - 1] if k > 0 else None


def iso(cycle):
    """YYYYMMDDHH -> YYYY-MM-DDTHH (the CLI's form)."""
    return f"{cycle[:4]}-{cycle[4:6]}-{cycle[6:8]}T{cycle[8:10]}"


def lead(cycle):
    """The last cycle runs the full lead; earlier ones reach the next cycle."""
    return LEAD_HOURS if index(cycle) == len(CYCLES) - 1 else CYCLE_LEAD_HOURS


def mpi_prefix(n, launcher=None):
    """Launcher prefix for the forecast: empty for one rank; ``launcher`` is the rule's ``mpi``
    resource (a profile's set-resources, e.g. ``srun``) or the ``mpi_launch`` option, with
    ``{n}`` for the ranks or ``-n N`` appended."""
    n = int(n)
    launcher = str(launcher or MPI_LAUNCH)
    if n <= 1:
        return ""
    return (launcher.format(n=n) if "{n}" in launcher else f"{launcher} -n {n}") + " "


def _files(pattern):
    return sorted(glob.glob(str(resolve_path(RUN, pattern))))


def _path_of(item):
    """A config input: a path, or a block with a ``path`` (e.g. a gridded-inventory layout)."""
    if item is None:
        return None
    return getattr(item, "path", item)


def met_files():
    out = []
    for pattern in RUN.inputs.met.paths.values():
        out += _files(pattern)
    return out


def emission_files():
    """Every file of the inventory (changing one reruns the emissions and what follows)."""
    e = RUN.inputs.emissions
    out = []
    for key in ("gridded", "points", "areas", "profiles", "scaling"):
        item = getattr(e, key, None)
        items = item if isinstance(item, (list, tuple)) else [item]
        for it in items:
            p = _path_of(it)
            if p is not None:
                out += _files(p) or [str(resolve_path(RUN, p))]
            mapping = getattr(it, "mapping", None)
            if mapping is not None:
                out.append(str(resolve_path(RUN, mapping)))
    return out


def static_files():
    """Region polygons, the boundary file and the station list."""
    out = [str(resolve_path(RUN, r.geojson)) for r in RUN.regions]
    if RUN.inputs.boundary.kind == "file" and RUN.inputs.boundary.path is not None:
        out.append(str(resolve_path(RUN, RUN.inputs.boundary.path)))
    if RUN.inputs.observations.station_coords is not None:
        out.append(str(resolve_path(RUN, RUN.inputs.observations.station_coords)))
    return out


def observation_files():
    out = []
    for src in RUN.inputs.observations.sources:
        out += _files(src.path)
    return out


def warm(cycle):
    """True when the cycle starts from the previous cycle (analysis, posterior inventory)."""
    return HAS_OBS and previous(cycle) is not None


def posterior(cycle):
    """The scaling table the forecast of ``cycle`` runs with (empty: the base inventory)."""
    return [R(cycle, "inversion", "scaling.csv")] if INVERT and warm(cycle) else []


def corrects(cycle):
    """True when the cycle's forecast is bias-corrected: the option is on and the cycle is warm
    (it has a verification of the previous forecast to learn from)."""
    return BIAS and cycle is not None and warm(cycle)


def full_lead(cycle):
    """Scenarios and the plan are scored on full-lead cycles only (their measures' windows are
    lead hours of the forecast; the short cycles before the last merely carry the state on)."""
    return lead(cycle) == LEAD_HOURS


def cycle_outputs(cycle):
    out = [R(cycle, "products", "_SUCCESS"), R(cycle, "bulletin", "index.html")]
    if full_lead(cycle):
        out += [R(cycle, "scenarios", name, "scores.csv") for name in SCENARIOS]
        if TARGET:
            out.append(R(cycle, "plan", "plan.csv"))
    if warm(cycle):
        out.append(R(cycle, "verification", "skill.csv"))
    if corrects(cycle):
        out.append(R(cycle, "bias_correction", "corrected.csv"))
    if warm(cycle) and corrects(previous(cycle)):
        out.append(R(cycle, "verification_corrected", "summary.csv"))
    return out


def all_outputs():
    return [p for c in CYCLES for p in cycle_outputs(c)]


# --- used by assimilation.smk
def _background(w):
    """The previous cycle's forecast: its restart at this cycle's time is the background."""
    return R(previous(w.cycle), "forecast", "_SUCCESS")


# --- used by inversion.smk
def _prior_scaling(w):
    """Yesterday's posterior inventory (none for the first inversion: the base inventory)."""
    prev = previous(w.cycle)
    return [R(prev, "inversion", "scaling.csv")] if warm(prev) else []


# --- used by forecast.smk
def _initial(w):
    return (expand(R(w.cycle, "analysis", "initial_{domain}.nc"), domain=DOMAINS)
            if warm(w.cycle) else [])


# --- used by bias_correction.smk
def _bias_history(w):
    """Every warm cycle's verification up to this one (the previous forecasts against the
    observations before each cycle): the pairs the filter may learn from."""
    return [R(c, "verification", "summary.csv") for c in CYCLES[:index(w.cycle) + 1]
            if warm(c)]


def _bias_state(w):
    """The previous cycle's filter state (none for the first corrected cycle)."""
    prev = previous(w.cycle)
    return [R(prev, "bias_correction", "bias_state.csv")] if corrects(prev) else []


# --- used by bulletin.smk
def _bulletin_inputs(w):
    out = {"config": AQF_CONFIG, "products": R(w.cycle, "products", "_SUCCESS")}
    if warm(w.cycle):
        out["analysis"] = R(w.cycle, "analysis", f"initial_{DOMAINS[0]}.nc")
        out["verification"] = R(w.cycle, "verification", "summary.csv")
    if INVERT and warm(w.cycle):
        out["inversion"] = R(w.cycle, "inversion", "scaling.csv")
        if warm(previous(w.cycle)):
            out["previous_inversion"] = R(previous(w.cycle), "inversion", "scaling.csv")
    if TARGET and full_lead(w.cycle):
        out["plan"] = R(w.cycle, "plan", "plan.csv")
    if full_lead(w.cycle) and SCENARIOS:
        out["scenarios"] = [R(w.cycle, "scenarios", n, "scores.csv") for n in SCENARIOS]
    return out


def _bulletin_options(w, input):
    opts = [f"--config {input.config}"]
    for key in ("analysis", "inversion", "plan", "verification", "previous_inversion"):
        if key in input.keys():
            opts.append(f"--{key.replace('_', '-')} {Path(input[key]).parent}")
    if "scenarios" in input.keys():
        opts.append("--scenarios " + " ".join(str(Path(f).parent) for f in input.scenarios))
    return " ".join(opts)
