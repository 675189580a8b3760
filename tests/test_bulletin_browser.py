"""The bulletin in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium) opens ``index.html`` from disk. The city table has one
row per city and lead window, every image loads, the console has no error, the page prints to
PDF; a screenshot is saved under the test's tmp directory (its path printed: ``pytest -s``).

Chromium is looked for on the PATH; where it is missing and the test runs as root with apt-get,
the set-up installs the two Debian packages (a browser download at run time does not work here).
Otherwise, or when the install fails, the test skips and says why. ``AQFORECAST_NO_APT=1``
turns the install off.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from bulletin_case import CITIES, full_page_args, n_windows, sample_cycle

from aqforecast.cli import main

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVERS = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
PACKAGES = ("chromium", "chromium-driver")


def _find() -> tuple[str | None, str | None]:
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    driver = shutil.which("chromedriver") or next((d for d in DRIVERS if os.path.exists(d)),
                                                  None)
    return browser, driver


def _apt_install() -> str | None:
    """Install the Debian packages; None on success, else why not."""
    if os.environ.get("AQFORECAST_NO_APT"):
        return "AQFORECAST_NO_APT is set"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not running as root (the set-up installs them only as root)"
    if not shutil.which("apt-get"):
        return "no apt-get on this machine"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd, limit in ((["apt-get", "update", "-qq"], 300),
                       (["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                         *PACKAGES], 900)):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, env=env,
                               check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"{' '.join(cmd[:2])} failed: {e}"
        if r.returncode:
            return f"{' '.join(cmd[:2])} exited {r.returncode}: {r.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _find()
    if binary is None or driver_path is None:
        why = _apt_install()
        binary, driver_path = _find()
        if binary is None or driver_path is None:
            pytest.skip(f"Chromium and chromedriver not found, and installing the Debian "
                        f"packages {' '.join(PACKAGES)} did not work: "
                        f"{why or 'installed, but still not found'}")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,1000", "--disable-extensions"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        drv = webdriver.Chrome(options=opts, service=Service(driver_path))
    except WebDriverException as e:
        pytest.skip(f"Chromium ({binary}, driver {driver_path}) did not start: "
                    f"{str(e).splitlines()[0]}")
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def bulletin(tmp_path_factory):
    c = sample_cycle(tmp_path_factory.getbasetemp() / "bulletin_cycle")
    out = tmp_path_factory.mktemp("bulletin_browser")
    assert main(full_page_args(c, out)) == 0
    return c, out


def test_bulletin_in_headless_chromium(browser, bulletin, tmp_path_factory):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    c, out = bulletin
    page = out / "index.html"
    browser.get(page.resolve().as_uri())
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return document.readyState") == "complete")
    # one row per city and lead window
    rows = browser.find_elements(By.CSS_SELECTOR, "#city-windows tr.city-row")
    n = n_windows(c["products_long"])
    assert len(rows) == len(CITIES) * n
    keys = {(r.get_attribute("data-city"), r.find_elements(By.TAG_NAME, "td")[2].text)
            for r in rows}
    assert len(keys) == len(rows)  # no city and lead window twice
    assert {k[0] for k in keys} == set(CITIES)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#city-windows tr.band")) == 3
    # every image loaded from beside the page
    broken = browser.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.getAttribute('src'));")
    assert broken == []
    assert browser.execute_script("return document.images.length") > 0
    # no console errors
    logs = browser.get_log("browser")
    errors = [e for e in logs if e.get("level") == "SEVERE"]
    assert errors == [], errors
    # printable: Chromium's print to PDF
    pdf = browser.execute_cdp_cmd("Page.printToPDF", {"printBackground": True})
    data = base64.b64decode(pdf["data"])
    assert data.startswith(b"%PDF") and len(data) > 10_000
    # the screenshot, a test artefact
    shots = tmp_path_factory.mktemp("bulletin_screenshot")
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1280, min(int(height) + 50, 12000))
    shot = Path(shots) / "bulletin.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 0
    (Path(shots) / "bulletin.pdf").write_bytes(data)
    print(f"\nbulletin screenshot: {shot}\nbulletin PDF: {Path(shots) / 'bulletin.pdf'}")
