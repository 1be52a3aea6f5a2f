"""``viewer.data``: the Earth Engine ``ee.data`` pixel-fetch calls."""
from .core.pixels import computePixels, getPixels

__all__ = ["getPixels", "computePixels"]
