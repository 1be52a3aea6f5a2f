"""The masking and pixel-fetch core: pure Python, numpy and rasterio; no web imports.

Importing it has no side effects: the GDAL/PROJ serving configuration is applied before the
first open (see :func:`viewer.core.access.configure_gdal`), settings are read when asked
(:mod:`viewer.core.config`).
"""
