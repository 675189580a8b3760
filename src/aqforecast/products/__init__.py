"""Forecast products: air-quality indices (:mod:`.aqi`), averaging rules (:mod:`.averaging`) and
maps (:mod:`.maps`, imports cartopy lazily; :mod:`.mapset` for fast map series), and the product
pipeline (:func:`aqforecast.products.pipeline.make_products`: CF NetCDF, AQI tables, maps,
verification from a forecast run directory; lead windows in :mod:`.windows`)."""
