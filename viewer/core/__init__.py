"""The masking and pixel-fetch core: pure Python, numpy and rasterio; no web imports."""
