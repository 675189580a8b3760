"""The morning bulletin: a self-contained page from a small cycle's files; every section is
there, names its files, every image it references exists; one city-table row per city and lead
window (three lead bands), one daily row per city and day, past days from the verification;
the inversion's factors with their ×/÷ range and the changes since yesterday."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from bulletin_case import CITIES, full_page_args, n_windows, sample_cycle

from aqforecast.bulletin.factors import inversion_section
from aqforecast.bulletin.labels import city_key, city_label, source_label
from aqforecast.bulletin.tagshares import top_three
from aqforecast.cli import main

SECTIONS = {"headline", "city-table", "daily-table", "maps", "sources", "inversion", "plan",
            "verification", "analysis", "scenarios"}


class _Page(HTMLParser):
    """Section ids, image sources, table rows by class, external references, text."""

    def __init__(self):
        super().__init__()
        self.ids, self.imgs, self.rows, self.refs, self.text = set(), [], {}, [], []
        self._row = None
        self.cells: dict[str, list[list[str]]] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src"))
        for k in ("src", "href"):
            if a.get(k):
                self.refs.append(a[k])
        if tag == "tr" and a.get("class"):
            self.rows[a["class"]] = self.rows.get(a["class"], 0) + 1
            self._row = a["class"]
            self.cells.setdefault(self._row, []).append([])
        if tag == "td" and self._row:
            self.cells[self._row][-1].append("")

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        self.text.append(data)
        if self._row and self.cells[self._row][-1]:
            self.cells[self._row][-1][-1] += data


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    return sample_cycle(tmp_path_factory.getbasetemp() / "bulletin_cycle")


@pytest.fixture(scope="module")
def page(cycle, tmp_path_factory):
    out = tmp_path_factory.mktemp("bulletin_full")
    assert main(full_page_args(cycle, out)) == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    p = _Page()
    p.feed(html)
    return out, html, p


def test_bulletin_page_is_complete_and_self_contained(cycle, page):
    out, html, p = page
    assert SECTIONS <= p.ids
    assert p.imgs, "no image in the page"
    for src in p.imgs:  # relative, beside the page: opening the file is enough
        assert not src.startswith(("http:", "https:", "/", "file:")) and (out / src).exists(), src
    for ref in p.refs:
        assert not ref.startswith(("http:", "https:", "//")), ref
    assert "http://" not in html and "https://" not in html and "@import" not in html
    assert "url(" not in html  # no web fonts, no remote CSS images
    assert "@media print" in html and "@page" in html  # printable
    # every image written is listed in the completion marker
    manifest = (out / "_SUCCESS").read_text()
    for png in (out / "img").glob("*.png"):
        assert png.name in manifest


def test_city_table_has_one_row_per_city_and_lead_window(cycle, page):
    _, html, p = page
    n = n_windows(cycle["products_long"])
    assert n == 24 + 8 + 8
    assert p.rows["city-row"] == len(CITIES) * n
    assert p.rows["band"] == 3
    for words in ("days 1–3 (3-hourly)", "days 4–7 (12-hourly)", "days 8–15 (daily)",
                  "第1–3天", "第4–7天", "第8–15天"):
        assert words in html
    daily = pd.read_csv(cycle["products_long"] / "aqi_daily_city.csv")
    assert p.rows["day-row"] == len(daily)
    assert p.rows["past-row"] == len(CITIES)  # the day before the cycle, per city
    # Chinese and English labels; AQI coloured with an HJ 633 colour
    assert "杭州 Hangzhou" in html and "绍兴 Shaoxing" in html
    assert "首要污染物 Primary" in html
    assert re.search(r'class="aqi" style="background: rgb\((0,228,0|255,255,0|255,126,0)\)',
                     html)
    # observed values reach the forecast rows whose hours the verification covers
    first = p.cells["city-row"][0]
    assert first[0].strip() == "杭州 Hangzhou" and first[-1].strip() != ""
    # sections name their files
    for name in ("leadwindow_d01.nc", "surface_hourly_d0", "aqi_daily_city.csv",
                 "paired.csv", "aqi_daily_station.csv"):
        assert name in html, name


def test_city_values_are_area_means_of_the_lead_window_file(cycle, page):
    """The first window of Hangzhou: AQI and PM2.5 are the means over the city's cells."""
    import xarray as xr

    from aqforecast.bulletin.citytable import lead_window_grid
    from aqforecast.config import load_config, resolve_path
    from aqforecast.products.tables import locate_cities

    cfg = load_config(cycle["config"])
    sets = {d.name: xr.open_dataset(cycle["products_long"] / f"leadwindow_{d.name}.nc").load()
            for d in cfg.domains}
    loc = locate_cities([(r.name, resolve_path(cfg, r.geojson)) for r in cfg.regions],
                        {d: lead_window_grid(d, ds) for d, ds in sets.items()})
    k = loc.names.index("Hangzhou")
    ds, idx = sets[loc.domain[k]], loc.cells[k]
    pm = float(np.asarray(ds["PM25"].values[0]).ravel()[idx].mean())
    aqi = float(np.asarray(ds["AQI_max"].values[0]).ravel()[idx].mean())
    row = page[2].cells["city-row"][0]
    assert row[0].strip() == "杭州 Hangzhou"
    assert row[3].strip() == f"{round(aqi):.0f}"
    assert row[6].strip() == f"{pm:.0f}"


def test_tag_shares_name_the_top_three_in_words(page):
    _, html, p = page
    # "<region> <sector> NN %" three times per city (region × sector words)
    assert len(re.findall(r"Largest contributors over the forecast: <b>([^<]+)</b>", html)) \
        == len(CITIES)
    text = re.search(r"Largest contributors over the forecast: <b>([^<]+)</b>", html).group(1)
    assert len(re.findall(r"\d+ %", text)) == 3
    assert any(f"tags_{i:02d}" in s for s in p.imgs for i in range(2))
    assert "tags_d01.nc" in html


def test_inversion_and_verification_sections(page):
    _, html, p = page
    assert "×/÷ 1.22" in html  # exp(0.2)
    assert "Changes since yesterday" in html and "+11 %" in html  # 1.0 / 0.9
    # a factor yesterday did not have is listed as new; none was dropped
    assert "new: 区外 outside power SO2" in html and "no longer estimated" not in html
    assert "scaling.csv" in html and "inversion_report.csv" in html
    assert "chi² per observation 2.70" in html and "3 of 40 observations rejected" in html
    assert p.rows["skill-row"] > 0 and "summary.csv" in html
    assert any("verify_all" in s for s in p.imgs)
    assert "Assimilated: 4 stations" in html  # distinct stations with a used observation
    assert "gross error" in html
    assert "industry NOx Hangzhou" in html and "plan.csv" in html


def test_without_config_the_page_says_what_is_missing(cycle, tmp_path):
    out = tmp_path / "b"
    assert main(["bulletin", "--forecast", str(cycle["run"]), "--products",
                 str(cycle["products"]), "--out", str(out)]) == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    p = _Page()
    p.feed(html)
    assert {"headline", "city-table", "daily-table", "maps", "sources"} <= p.ids
    assert "city-row" not in p.rows and "--config CONFIG" in html
    assert p.rows["day-row"] == len(pd.read_csv(cycle["products"] / "aqi_daily_city.csv"))
    for src in p.imgs:
        assert (out / src).exists(), src


def test_empty_verification_is_said_not_failed(cycle, tmp_path):
    """A verification whose forecast and observations did not overlap (empty tables)."""
    from aqforecast.io.rundir import write_success

    ver = tmp_path / "ver"
    ver.mkdir()
    files = []
    for name, cols in (("summary.csv", "pollutant,city,lead_day,n"),
                       ("paired.csv", "station,time,lead_hours,lead_day,pollutant,fcst,obs"),
                       ("skill.csv", "pollutant,station,lead_day,threshold,n")):
        (ver / name).write_text(cols + "\n")
        files.append(ver / name)
    write_success(ver, files, {"stage": "verify"})
    out = tmp_path / "b"
    assert main(["bulletin", "--forecast", str(cycle["run"]), "--products",
                 str(cycle["products"]), "--out", str(out), "--config", str(cycle["config"]),
                 "--verification", str(ver)]) == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    assert 'id="verification"' in html and "do not overlap" in html
    p = _Page()
    p.feed(html)
    assert "past-row" not in p.rows and "skill-row" not in p.rows
    assert p.rows["city-row"] == len(CITIES) * n_windows(cycle["products"])


def test_bulletin_refuses_unfinished_inputs(cycle, tmp_path, capsys):
    assert main(["bulletin", "--forecast", str(tmp_path), "--products", str(cycle["products"]),
                 "--out", str(tmp_path / "b")]) == 2
    assert "did not finish" in capsys.readouterr().err
    assert main(["bulletin", "--forecast", str(cycle["run"]), "--products",
                 str(cycle["products"]), "--out", str(tmp_path / "c"), "--inversion",
                 str(tmp_path)]) == 2
    assert "scaling.csv" in capsys.readouterr().err
    assert not (tmp_path / "c" / "index.html").exists()


def test_inversion_section_ranges_and_changes(tmp_path):
    today, yest = tmp_path / "t", tmp_path / "y"
    for d, f, s in ((today, [1.5, 0.8], [0.1, np.nan]), (yest, [1.0, 0.8], [0.2, 0.3])):
        d.mkdir()
        pd.DataFrame({"region": ["Hangzhou", "Ningbo"], "sector": ["industry", "power"],
                      "pollutant": ["NOx", "NOx"], "factor": f, "sigma_ln": s}
                     ).to_csv(d / "scaling.csv", index=False)
    ctx = inversion_section(today, yest)
    cell = ctx["blocks"][0]["rows"][0]["cells"][0]
    assert cell["factor"] == "1.50" and cell["times"] == f"{np.exp(0.1):.2f}"
    assert cell["range"] == f"{1.5 / np.exp(0.1):.2f}–{1.5 * np.exp(0.1):.2f}"
    assert ctx["blocks"][0]["rows"][1]["cells"][1]["times"] == ""  # no sigma: no range
    ch = ctx["changes"]
    assert ch["n_compared"] == 2 and ch["n_changed"] == 1
    assert ch["rows"][0]["change"] == "+50 %" and ch["rows"][0]["region"] == "杭州 Hangzhou"


def test_labels_and_words():
    assert city_key("杭州市") == city_key("Hangzhou") == "Hangzhou"
    assert city_label("Ningbo") == "宁波 Ningbo" and city_label("Atlantis") == "Atlantis"
    assert source_label("Hangzhou", "industry") == "Hangzhou industry"
    assert source_label("boundary", "bc") == "boundary inflow"
    shares = pd.DataFrame({"region": ["Hangzhou", "boundary", "Shaoxing", "Hangzhou"],
                           "sector": ["industry", "bc", "transport", "power"],
                           "share_percent": [34.2, 20.0, 9.4, 5.0]})
    assert top_three(shares, chinese=False) == \
        "Hangzhou industry 34 %, boundary inflow 20 %, Shaoxing transport 9 %"


def test_scenarios_and_plan_effects_come_from_their_files(page):
    _, html, _ = page
    # the largest complete PM2.5 change (Hangzhou day 2: -6.0) and the O3 one, from scores.csv
    assert "PM2.5 -6.0 (Hangzhou, day 2)" in html and "O3-8h +2.0 (Shaoxing, day 2)" in html
    assert "321.5" in html and "3858000" in html           # measures.csv tonnes and cost
    assert "74.9" in html and "81.0" in html                # limits.csv predicted and base
    assert "hz-industry-nox" in html and "measures.csv" in html
