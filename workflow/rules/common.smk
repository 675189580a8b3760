# Shared set-up: load and validate the run configuration with aqforecast's strict models (which
# also read `NO` as a species, not as YAML 1.1 false), and define the result paths.
from pathlib import Path

from aqforecast.config import load_config

AQF_CONFIG = config.get("aqf_config", "config/config.yaml")
RUN = load_config(AQF_CONFIG)
CYCLE = config.get("cycle", RUN.time.start.strftime("%Y%m%d%H"))
RESULTS = Path(config.get("results", str(RUN.outputs.dir))) / CYCLE
DOMAINS = RUN.domain_names
LEAD_HOURS = int(config.get("lead_hours", RUN.time.lead_hours))
MPI_RANKS = int(config.get("mpi_ranks", 1))
MPI_LAUNCH = config.get("mpi_launch", "mpiexec -n {n}")


def mpi_prefix(n):
    """Launcher prefix for the forecast: empty for one rank."""
    return "" if n <= 1 else MPI_LAUNCH.format(n=n) + " "


def all_outputs():
    return [RESULTS / "products" / "done.flag", RESULTS / "bulletin" / "index.html"]
