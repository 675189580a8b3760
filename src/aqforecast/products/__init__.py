"""Forecast products: air-quality indices (:mod:`.aqi`), averaging rules (:mod:`.averaging`) and
maps (:mod:`.maps`, imports cartopy lazily)."""
