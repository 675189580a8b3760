"""aqforecast: numerical air-quality forecasting and source apportionment.

Layers (import downward only; see DESIGN.md):
0 constants, species · 1 config, grid, kernels, parallel · 2 io · 3 met, emissions, chemistry,
observations · 4 transport, tagging · 5 assimilation, inversion · 6 scenarios, products,
verification · 7 stages, cli.
"""

__version__ = "0.1.0"
