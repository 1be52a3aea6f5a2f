"""``viewer.data``: the Earth Engine ``ee.data`` pixel-fetch calls."""
from .core.pixels import computePixels, getPixels

__all__ = ["getPixels", "computePixels", "computePixelsToFile"]


def __getattr__(name: str):
    # computePixelsToFile runs on Dask, whose import takes seconds: loaded on first use only
    if name == "computePixelsToFile":
        from .jobs.big_export import computePixelsToFile

        return computePixelsToFile
    raise AttributeError(f"module 'viewer.data' has no attribute {name!r}")
