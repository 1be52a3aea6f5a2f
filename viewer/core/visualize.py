"""Visualization: Earth Engine ``visualize`` parameters -> 8-bit RGB with a mask."""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
from PIL import ImageColor

from .errors import InvalidArgument

__all__ = ["parse_color", "parse_palette", "check_opacity", "normalize_vis", "visualize_layers", "palette_lut", "VIS_BANDS"]

VIS_BANDS = ("vis-red", "vis-green", "vis-blue")


def parse_color(color: Any) -> tuple[int, int, int]:
    """CSS name, ``#RRGGBB``, ``RRGGBB`` or ``RGB`` -> (r, g, b)."""
    if isinstance(color, (tuple, list)) and len(color) == 3 and all(isinstance(c, (int, np.integer)) for c in color):
        if all(0 <= c <= 255 for c in color):
            return tuple(int(c) for c in color)  # type: ignore[return-value]
    if isinstance(color, str) and color.strip():
        text = color.strip()
        if all(ch in "0123456789abcdefABCDEF" for ch in text) and len(text) in (3, 6):
            text = "#" + text
        try:
            return ImageColor.getrgb(text)[:3]
        except ValueError:
            pass
    raise InvalidArgument(
        f"colour {color!r} is not allowed; use a CSS colour name, '#RRGGBB', 'RRGGBB' or 'RGB'",
        value=color, allowed="CSS name or hex colour",
    )


def parse_palette(palette: Any) -> list[tuple[int, int, int]]:
    """A palette as a list or comma-separated string of colours (at least one)."""
    if isinstance(palette, str):
        palette = [p for p in palette.split(",")]
    if not isinstance(palette, (list, tuple)) or len(palette) == 0:
        raise InvalidArgument(
            f"palette {palette!r} is not allowed; give a non-empty list of colours such as ['blue', 'ff0000']",
            value=palette, allowed="non-empty list of colours",
        )
    return [parse_color(c) for c in palette]


def _per_band(name: str, value: Any, n: int, default: float | None) -> list[float] | None:
    if value is None:
        return None if default is None else [default] * n
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    vals = list(value) if isinstance(value, (list, tuple)) else [value]
    try:
        nums = [float(v) for v in vals]
    except (TypeError, ValueError):
        raise InvalidArgument(f"{name} {value!r} must be a number or a list of numbers", value=value) from None
    if not all(math.isfinite(v) for v in nums):
        raise InvalidArgument(f"{name} {value!r} must be finite numbers", value=value)
    if len(nums) == 1:
        nums = nums * n
    if len(nums) != n:
        raise InvalidArgument(f"{name} {value!r} has {len(nums)} values; allowed: 1 or {n} (one per band)",
                              value=value, allowed=[1, n])
    return nums


def check_opacity(opacity: Any) -> float:
    """``opacity`` as a float if it is a number in [0, 1], else InvalidArgument."""
    if isinstance(opacity, bool) or not isinstance(opacity, (int, float)) or not 0 <= opacity <= 1:
        raise InvalidArgument(f"opacity {opacity!r} must be a number in [0, 1]", value=opacity, allowed="[0, 1]")
    return float(opacity)


def normalize_vis(params: dict, n_bands: int) -> dict:
    """Validate visualization parameters for ``n_bands`` bands into a canonical dict."""
    if n_bands not in (1, 3):
        raise InvalidArgument(
            f"visualization needs 1 or 3 bands, got {n_bands}; select bands with 'bands'",
            value=n_bands, allowed=[1, 3],
        )
    palette = params.get("palette")
    if palette is not None:
        palette = parse_palette(palette)
        if n_bands != 1:
            raise InvalidArgument(f"a palette needs exactly 1 band, got {n_bands}", value=n_bands, allowed=1)
    gain = _per_band("gain", params.get("gain"), n_bands, None)
    bias = _per_band("bias", params.get("bias"), n_bands, None)
    if (gain is not None or bias is not None) and (params.get("min") is not None or params.get("max") is not None):
        raise InvalidArgument("give either min/max or gain/bias, not both", value=params)
    vmin = _per_band("min", params.get("min"), n_bands, 0.0)
    vmax = _per_band("max", params.get("max"), n_bands, 1.0)
    if gain is not None or bias is not None:
        g = gain or [1.0] * n_bands
        b = bias or [0.0] * n_bands
        if any(x == 0 for x in g):
            raise InvalidArgument(f"gain {g} must be non-zero", value=g)
        vmin = [(-bb) / gg for gg, bb in zip(g, b)]
        vmax = [(255 - bb) / gg for gg, bb in zip(g, b)]
    for lo, hi in zip(vmin, vmax):
        if lo == hi:
            raise InvalidArgument(f"range min {lo} == max {hi} is not allowed; min and max must differ",
                                  value=(lo, hi), allowed="min != max")
    gamma = _per_band("gamma", params.get("gamma"), n_bands, 1.0)
    if any(g <= 0 for g in gamma):
        raise InvalidArgument(f"gamma {gamma} must be > 0", value=gamma)
    opacity = params.get("opacity")
    return {"min": vmin, "max": vmax, "gamma": gamma,
            "palette": [list(c) for c in palette] if palette else None,
            "opacity": 1.0 if opacity is None else check_opacity(opacity)}


def palette_lut(palette: Sequence[Sequence[int]]) -> np.ndarray:
    """A 256 x 3 uint8 lookup table interpolating the palette linearly (Earth Engine's ramp)."""
    colors = np.asarray(palette, dtype=np.float64)
    if len(colors) == 1:
        return np.repeat(colors.astype(np.uint8), 256, axis=0)
    pos = np.linspace(0, 1, len(colors))
    x = np.linspace(0, 1, 256)
    lut = np.stack([np.interp(x, pos, colors[:, c]) for c in range(3)], axis=1)
    return np.round(lut).astype(np.uint8)


def stretch(values: np.ndarray, vmin: float, vmax: float, gamma: float) -> np.ndarray:
    """Values -> uint8 0..255 with a linear stretch and gamma."""
    if values.dtype in (np.uint8, np.uint16) and values.size > 16384:  # one lookup (same formula)
        return _stretch_lut(values.dtype.str, float(vmin), float(vmax), float(gamma))[values]
    return _stretch(values, vmin, vmax, gamma)


@lru_cache(maxsize=64)
def _stretch_lut(dtype: str, vmin: float, vmax: float, gamma: float) -> np.ndarray:
    dt = np.dtype(dtype)
    lut = _stretch(np.arange(np.iinfo(dt).max + 1, dtype=dt), vmin, vmax, gamma)
    lut.setflags(write=False)
    return lut


def _stretch(values: np.ndarray, vmin: float, vmax: float, gamma: float) -> np.ndarray:
    v = (values.astype(np.float32, copy=False) - np.float32(vmin)) * np.float32(1.0 / (vmax - vmin))
    np.clip(v, 0, 1, out=v)
    np.nan_to_num(v, copy=False)
    if gamma != 1.0:
        np.power(v, np.float32(1.0 / gamma), out=v)
    v *= 255.0
    v += 0.5
    return v.astype(np.uint8)


def visualize_layers(layers: list, vis: dict) -> list:
    """Three uint8 layers (red, green, blue) with the combined mask times opacity."""
    from .evaluate import Layer, _and_footprints, _min_masks

    mask = None
    footprint = layers[0].footprint
    for l in layers:
        mask = _min_masks(mask, l.mask)
        footprint = _and_footprints(footprint, l.footprint)
    if vis["opacity"] < 1:
        mask = (np.ones(layers[0].values.shape, np.float32) if mask is None else mask) * vis["opacity"]
    if vis["palette"] is not None:
        idx = stretch(layers[0].values, vis["min"][0], vis["max"][0], vis["gamma"][0])
        rgb = palette_lut(vis["palette"])[idx]
        channels = [rgb[..., 0], rgb[..., 1], rgb[..., 2]]
    else:
        channels = [stretch(l.values, lo, hi, g) for l, lo, hi, g in
                    zip(layers, vis["min"], vis["max"], vis["gamma"])]
        if len(channels) == 1:
            channels = channels * 3
    return [Layer(c, mask, footprint) for c in channels]
