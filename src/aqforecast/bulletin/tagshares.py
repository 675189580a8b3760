"""Source shares of PM2.5 per city by region × sector, in words and as one chart per city.

The products' receptor tables (``receptors_city_<domain>.csv``) give the shares by region and by
sector separately; the page names contributors as region × sector pairs ("Hangzhou industry
34 %"), so they are read here from the forecast's tags (``tags_<domain>.nc``: one tag per region
and sector, plus the initial-state and boundary tags) at the receptors the products use: each
station of ``aqi_daily_station.csv`` at its cell in the domain that table names (the finest
containing it, :func:`aqforecast.products.receptors.locate_stations`), PM2.5 the sum of its tagged
components (:func:`aqforecast.products.receptors.pollutant_field`). Per local day the tag's daily
mean is averaged over the city's stations; a share is the ratio of those means (as in the receptor
tables), and the whole-forecast share the ratio of the means over every hour.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..products.receptors import locate_stations, pollutant_field, receptor_series
from .labels import city_en, city_key, city_label, source_label

__all__ = ["city_tag_shares", "draw_share_chart", "share_section", "top_three"]

log = logging.getLogger(__name__)

N_CHART_SOURCES = 8  # the chart shows the largest sources, the rest as "other"


def _stations(products: Path) -> pd.DataFrame:
    f = products / "aqi_daily_station.csv"
    if not f.exists():
        return pd.DataFrame(columns=["station", "domain", "city", "lon", "lat"])
    st = pd.read_csv(f, dtype={"station": str})
    need = {"station", "domain", "city", "lon", "lat"}
    if not need <= set(st.columns):
        return pd.DataFrame(columns=sorted(need))
    return st[sorted(need)].dropna().drop_duplicates("station")


def city_tag_shares(forecast: Path, products: Path, local, pollutant: str = "PM25"
                    ) -> pd.DataFrame:
    """Long table: city (key), date (local, YYYY-MM-DD, or "all" for the whole forecast),
    region, sector, contribution (mean of the city's stations, units of the tags), share_percent,
    n_stations. Empty when the run has no tags or the products no station table."""
    import xarray as xr

    st = _stations(products)
    parts = []
    for dom, sts in st.groupby("domain"):
        f = Path(forecast) / f"tags_{dom}.nc"
        if not f.exists():
            continue
        with xr.open_dataset(f) as ds:
            if "tag_region" not in ds.coords:
                continue
            field = pollutant_field(ds, pollutant)
            if field is None:
                continue
            cells = locate_stations(ds, sts, name_column="station")
            if cells.empty:
                continue
            vals = np.asarray(receptor_series(field, cells).values, float)  # tag, time, stn
            tags = list(zip(np.asarray(ds["tag_region"].values).astype(str),
                            np.asarray(ds["tag_sector"].values).astype(str)))
            days = local.to_local(ds["time"].values).strftime("%Y-%m-%d")
        city = sts.set_index("station")["city"].reindex(cells["receptor"]).map(city_key).values
        for label, sel in [(d, np.asarray(days == d)) for d in pd.unique(days)] + \
                [("all", np.ones(len(days), bool))]:
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(vals[:, sel], axis=1)                  # tag, station
            for k, (reg, sec) in enumerate(tags):
                parts.append(pd.DataFrame({"city": city, "date": label, "region": reg,
                                           "sector": sec, "station": cells["receptor"].values,
                                           "contribution": mean[k]}))
    if not parts:
        return pd.DataFrame(columns=["city", "date", "region", "sector", "contribution",
                                     "share_percent", "n_stations"])
    df = pd.concat(parts, ignore_index=True)
    g = df.groupby(["city", "date", "region", "sector"], sort=False)
    out = g["contribution"].mean().to_frame().join(g["station"].nunique().rename("n_stations"))
    out = out.reset_index()
    total = out.groupby(["city", "date"])["contribution"].transform("sum")
    out["share_percent"] = np.where(total > 0, 100.0 * out["contribution"] /
                                    total.where(total > 0, 1.0), np.nan)
    return out


def top_three(shares: pd.DataFrame, chinese: bool = True) -> str:
    """The three largest contributors in words: ``Hangzhou industry 34 %, ...``."""
    top = shares.dropna(subset=["share_percent"]).nlargest(3, "share_percent")
    return ", ".join(f"{source_label(r.region, r.sector, chinese)} {r.share_percent:.0f} %"
                     for r in top.itertuples())


def _slug(name: str, i: int) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "_", city_en(name)).strip("_").lower()
    return f"{i:02d}_{s}" if s else f"{i:02d}"


def draw_share_chart(shares: pd.DataFrame, city: str, path: Path, lead_days: dict,
                     pollutant_label: str = "PM2.5") -> Path:
    """One horizontal stacked bar per local day (and the whole forecast) of the city's
    region × sector shares; the largest :data:`N_CHART_SOURCES` sources named, the rest
    "other". PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = shares.assign(source=[source_label(r, t) for r, t in zip(shares["region"],
                                                                 shares["sector"])])
    overall = s[s["date"] == "all"].sort_values("share_percent", ascending=False)
    names = list(overall["source"].head(N_CHART_SOURCES))
    dates = sorted(d for d in s["date"].unique() if d != "all") + ["all"]
    table = s.pivot_table(index="date", columns="source", values="share_percent",
                          aggfunc="sum").reindex(dates).fillna(0.0)
    other = table.drop(columns=[c for c in names if c in table.columns]).sum(axis=1)
    table = table.reindex(columns=names, fill_value=0.0)
    if (other > 0.05).any():
        table["other"] = other
    labels = [("whole forecast" if d == "all" else
               f"day {lead_days[d]} ({d[5:]})" if d in lead_days else d[5:]) for d in dates]
    fig, ax = plt.subplots(figsize=(8.0, 0.4 * len(dates) + 1.6), dpi=90)
    left = np.zeros(len(dates))
    cmap = plt.get_cmap("tab10")
    for j, col in enumerate(table.columns):
        v = table[col].to_numpy()
        ax.barh(labels, v, left=left, color="#bbbbbb" if col == "other" else cmap(j % 10),
                label=col, edgecolor="white", linewidth=0.5)
        left += v
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel(f"share of {pollutant_label} (%)")
    ax.set_title(f"{city_en(city)}: {pollutant_label} by source region x sector", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # glyphs missing for unknown names
        fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def share_section(forecast: Path, products: Path, out: Path, local, lead_days: dict
                  ) -> tuple[list[dict], list[str]]:
    """Per city: chart (relative path), top three over the whole forecast and per day."""
    shares = city_tag_shares(forecast, products, local)
    out_rows = []
    for i, (city, g) in enumerate(shares.groupby("city", sort=True)):
        png = out / "img" / f"tags_{_slug(city, i)}.png"
        draw_share_chart(g, city, png, lead_days)
        days = [{"date": d, "lead_day": lead_days.get(d, ""),
                 "text": top_three(gd)} for d, gd in g.groupby("date") if d != "all"]
        out_rows.append({"city": city_label(city), "src": f"img/{png.name}",
                         "text": top_three(g[g["date"] == "all"]),
                         "n_stations": int(g["n_stations"].max()), "days": days})
    files = sorted({str(Path(forecast) / f"tags_{d}.nc")
                    for d in _stations(products)["domain"].unique()
                    if (Path(forecast) / f"tags_{d}.nc").exists()})
    return out_rows, files + [str(products / "aqi_daily_station.csv")]
