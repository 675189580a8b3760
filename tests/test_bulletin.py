"""The morning bulletin: a self-contained page from a small cycle's files; every section is
there, every image it references exists, one table row per city and lead day."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from forecast_case import small_config

from aqforecast.cli import main


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.imgs, self.rows = set(), [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src"))
        if tag == "tr" and a.get("class") == "city-row":
            self.rows += 1


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bulletin")
    case = small_config(tmp, hours=3, tags=True)
    run, prod = tmp / "run", tmp / "products"
    assert main(["forecast", str(case), "--lead-hours", "3", "--out", str(run),
                 "--no-progress"]) == 0
    assert main(["products", str(case), "--run", str(run), "--out", str(prod)]) == 0
    return case, run, prod, tmp


def test_bulletin_page_is_complete_and_self_contained(cycle, tmp_path):
    case, run, prod, tmp = cycle
    plan = tmp_path / "plan"
    plan.mkdir()
    pd.DataFrame({"measure": ["a"], "cut": [0.3], "tonnes_abated": [12.0],
                  "cost": [1200.0]}).to_csv(plan / "plan.csv", index=False)
    pd.DataFrame({"limit": [1], "binding": [True]}).to_csv(plan / "limits.csv", index=False)
    out = tmp_path / "bulletin"
    assert main(["bulletin", "--forecast", str(run), "--products", str(prod), "--out", str(out),
                 "--plan", str(plan)]) == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    page = _Page()
    page.feed(html)
    assert {"headline", "city-table", "maps", "sources", "plan"} <= page.ids
    assert page.imgs, "no map in the page"
    for src in page.imgs:  # relative, beside the page: opening the file is enough
        assert not src.startswith(("http:", "https:", "/")) and (out / src).exists(), src
    table = pd.read_csv(prod / "aqi_daily_city.csv")
    assert page.rows == len(table)
    assert "aqi_daily_city.csv" in html and "plan.csv" in html  # sections name their files
    assert "http://" not in html and "https://" not in html
    assert (out / "_SUCCESS").exists()


def test_bulletin_refuses_unfinished_inputs(cycle, tmp_path, capsys):
    case, run, prod, tmp = cycle
    assert main(["bulletin", "--forecast", str(tmp_path), "--products", str(prod), "--out",
                 str(tmp_path / "b")]) == 2
    assert "did not finish" in capsys.readouterr().err
