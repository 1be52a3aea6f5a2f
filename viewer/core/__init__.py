"""The masking and pixel-fetch core: pure Python, numpy and rasterio; no web imports.

Importing it applies the GDAL/PROJ serving configuration once (see :mod:`viewer.core.access`).
"""
from .access import configure_gdal

configure_gdal()
