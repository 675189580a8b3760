"""Print where a finished daily cycle's products are (the end of `make demo`)."""

import sys
from pathlib import Path

ITEMS = [("bulletin (open in a browser)", "bulletin/index.html"),
         ("AQI tables, cities", "products/aqi_daily_city.csv"),
         ("AQI tables, stations", "products/aqi_daily_station.csv"),
         ("maps", "products/maps/"),
         ("CF NetCDF products", "products/*.nc"),
         ("forecast (conc, tags, budgets, restarts)", "forecast/"),
         ("analysis (initial state)", "analysis/"),
         ("posterior inventory", "inversion/scaling.csv"),
         ("scenario scores", "scenarios/*/scores.csv"),
         ("least-cost plan", "plan/plan.csv"),
         ("verification of the previous cycle", "verification/summary.csv"),
         ("logs and timings", "logs/ benchmarks/")]


def main(root: str) -> int:
    cycles = sorted(p for p in Path(root).iterdir() if p.is_dir() and p.name.isdigit())
    if not cycles:
        print(f"no cycles under {root}")
        return 1
    for c in cycles:
        print(f"--- cycle {c.name} ({c})")
        for label, pattern in ITEMS:
            first = pattern.split()[0].rstrip("/")
            found = sorted(c.glob(first)) if "*" in first else ([c / first] if (c / first).exists()
                                                                  else [])
            if found:
                shown = ", ".join(str(f.relative_to(c)) for f in found[:4])
                more = f" (+{len(found) - 4})" if len(found) > 4 else ""
                print(f"  {label:42s} {shown}{more}")
    print(f"--- the morning page: {cycles[-1] / 'bulletin' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "results/demo/cycles"))
