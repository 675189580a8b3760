# %% [markdown]
# # A short nested forecast from Python
#
# Grid -> Model -> Simulation on the sample case (run `make sample-met` first). The notebook is
# kept as a percent-format script (open it with Jupytext, or run `python notebooks/01_forecast_api.py`).
# `AQF_CONFIG` names another configuration (the tests run it on a small case).

# %%
import os

import numpy as np

from aqforecast.config import load_config
from aqforecast.forecast import build_models
from aqforecast.transport.simulation import Callback, Simulation, TimeInterval

cfg = load_config(os.environ.get("AQF_CONFIG", "config/config.yaml"))
models = build_models(cfg, tags=False)
for m in models:
    m.cold_start()
o3 = models[0].species.index("O3")
history = []
sim = Simulation(models, models[0].time + np.timedelta64(3, "h"), cfg.time.sync_step_s)
sim.callbacks["o3"] = Callback(
    lambda s: history.append((str(s.time), float(models[1].conc()[o3, 0].mean() * 1e9))),
    TimeInterval(3600))
sim.run()

# %% [markdown]
# Surface O3 in the 1 km nest (ppb, domain mean) each hour, and the d01 mass budget:

# %%
for t, v in history:
    print(t, f"{v:.1f} ppb")
print({k: float(v[o3]) for k, v in models[0].budget.items()})
