"""``Image``: a lazy, immutable Earth Engine-style image over the local catalog."""
from __future__ import annotations

import os
import re
from typing import Any, Iterable

import numpy as np
import PIL.Image

from .errors import InvalidArgument, UnknownBand
from .geometry import to_geojson
from .graph import BandInfo, Node
from .grid import Grid
from .mask_data import attach_masks
from .ops import COMPARISONS, FLOAT_UNARY, INTEGER_OPS, RESAMPLING, VIS_BANDS
from .regions import reduce_region
from .sources import asset_node, constant_node, file_node, picture_node
from .visualize import normalize_vis, palette_band_error

__all__ = ["Image", "EEList"]


class EEList(list):
    """A list that also answers ``getInfo()``, as Earth Engine's client lists do."""

    def getInfo(self) -> list:
        return [x.getInfo() if hasattr(x, "getInfo") else x for x in self]


def _result_dtype(op: str, a: BandInfo, b: BandInfo) -> str:
    if op in COMPARISONS:
        return "uint8"
    if op in INTEGER_OPS:
        return "int64" if np.dtype(a.dtype).kind in "iu" and np.dtype(b.dtype).kind in "iu" else "int64"
    if op == "divide":
        return "float64"
    if op in ("add", "subtract", "multiply", "pow"):
        kinds = np.dtype(a.dtype).kind + np.dtype(b.dtype).kind
        if "f" in kinds:
            return np.result_type(a.dtype, b.dtype, np.float32).name
        return "int64" if op != "pow" else "float64"
    return np.result_type(a.dtype, b.dtype).name


class Image:
    """A lazy image: ``Image('LANDSAT/LC08/SAMPLE')``, ``Image(5)``, ``Image.open(path)``,
    ``Image.from_array(array)``. Every method returns a new Image; pixels are read only
    when a grid asks for them (``data.computePixels``, map tiles, statistics)."""

    def __init__(self, args: Any = None, *, masks: dict | None = None, classes=None, caption: str | None = None,
                 mode: str | None = None, _node: Node | None = None, _props: dict | None = None,
                 _id: str | None = None) -> None:
        wandb = any(v is not None for v in (masks, classes, caption, mode))
        if _is_picture(args) or (wandb and isinstance(args, str)):
            # wandb.Image(data_or_path, mode=None, caption=None, classes=..., masks=...)
            picture = Image.from_array(args, masks=masks, classes=classes, caption=caption, mode=mode)
            self.__dict__.update(picture.__dict__)
            return
        if wandb:
            raise InvalidArgument("masks/classes need an image array, a PIL image or a file path (so do caption and "
                                  "mode): Image(array, masks=...) or Image.from_array(array, masks=...)",
                                  value=type(args).__name__, allowed="numpy array, PIL.Image.Image, file path")
        if _node is not None:
            self._node, self._props, self._id = _node, dict(_props or {}), _id
        elif isinstance(args, Image):
            self._node, self._props, self._id = args._node, dict(args._props), args._id
        elif isinstance(args, str):
            self._node, self._props = asset_node(args)
            self._id = args
        elif args is None:
            self._node, self._props, self._id = Node("constant", (), ()), {}, None
        else:
            self._node, self._props, self._id = constant_node(args), {}, None

    # construction -----------------------------------------------------------------------
    @classmethod
    def open(cls, path) -> "Image":
        """Every band of a GeoTIFF / COG on disk (nodata, internal mask or alpha -> mask)."""
        return cls(_node=file_node(path))

    @classmethod
    def constant(cls, value) -> "Image":
        return cls(_node=constant_node(value))

    @classmethod
    def from_array(cls, data, crs=None, transform=None, band_names=None, mask=None, *,
                   masks: dict | None = None, classes=None, caption: str | None = None,
                   mode: str | None = None) -> "Image":
        """An image from a numpy array (H x W, H x W x C or C x H x W), a Pillow image or a picture file.

        The Weights & Biases entry point: ``Image(data_or_path, mode=None, caption=None,
        masks=..., classes=...)`` is this call. Pillow images and files (PNG, JPEG, ...)
        are read into memory (``mode`` converts them, an alpha channel becomes the mask, as it
        does for an H x W x 4 uint8 array without ``band_names``/``mask``); a
        ``.tif`` path opens as a raster (see :func:`viewer.core.sources.picture_node`).
        Without ``crs`` the image lives in pixel coordinates. ``masks`` takes the W&B
        dictionary (``{"predictions": {"mask_data": ..., "class_labels": ...}}``) and attaches
        segmentation overlays (see :mod:`viewer.core.segmentation`); ``caption`` is kept as the
        :attr:`caption` property (and ``get('caption')``).
        """
        img = cls(_node=picture_node(data, mode, crs, transform, band_names, mask))
        if caption is not None:
            if not isinstance(caption, str):
                raise InvalidArgument(f"caption {caption!r} must be a string", value=repr(caption)[:80],
                                      allowed="str")
            img._props["caption"] = caption
        if masks is not None or classes is not None:
            img = attach_masks(img, masks or {}, classes)
        return img

    def _derive(self, node: Node, keep_id: bool = False) -> "Image":
        img = Image(_node=node, _props=self._props, _id=self._id if keep_id else None)
        overlays = getattr(self, "_overlays", None)
        if overlays:
            img._overlays = overlays
        return img

    # metadata ---------------------------------------------------------------------------
    @property
    def node(self) -> Node:
        return self._node

    @property
    def bands(self) -> tuple[BandInfo, ...]:
        return self._node.bands

    def native_grid(self) -> Grid | None:
        """The native grid of the first band that has one (``None`` for constants)."""
        return self._node.native_grid()

    @property
    def caption(self) -> str | None:
        """The W&B ``caption`` given to ``Image(..., caption=...)`` (``None`` without one)."""
        return self._props.get("caption")

    def bandNames(self) -> EEList:
        return EEList(b.name for b in self._node.bands)

    def getInfo(self) -> dict:
        out: dict[str, Any] = {"type": "Image", "bands": [b.info() for b in self._node.bands]}
        if self._id:
            out["id"] = self._id
            out["version"] = 1
        if self._props:
            out["properties"] = dict(self._props)
        return out

    def get(self, name: str) -> Any:
        return self._props.get(name)

    def propertyNames(self) -> EEList:
        return EEList(self._props)

    def set(self, *args) -> "Image":
        props = dict(self._props)
        if len(args) == 1 and isinstance(args[0], dict):
            props.update(args[0])
        elif len(args) == 2:
            props[args[0]] = args[1]
        else:
            raise InvalidArgument("set() takes a dict or a (name, value) pair", value=args)
        img = self._derive(self._node, keep_id=True)
        img._props = props
        return img

    def __repr__(self) -> str:
        return f"viewer.Image({self._id or self._node.op}, bands={list(self.bandNames())})"

    # band selection ---------------------------------------------------------------------
    def _indices(self, selectors: Iterable) -> list[int]:
        names = [b.name for b in self._node.bands]
        out: list[int] = []
        for s in selectors:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer, str)):
                raise UnknownBand(f"band selector {s!r} must be a name, regex or index; bands: {names}",
                                  value=s, allowed=names)
            if isinstance(s, (int, np.integer)):
                if not 0 <= s < len(names):
                    raise UnknownBand(f"band index {s} is out of range; allowed 0..{len(names) - 1} "
                                      f"for bands {names}", value=s, allowed=names)
                out.append(int(s))
                continue
            if s in names:
                out.append(names.index(s))
                continue
            try:
                pattern = re.compile(s)
            except re.error:
                pattern = None
            hits = [i for i, n in enumerate(names) if pattern is not None and pattern.fullmatch(n)]
            if not hits:
                raise UnknownBand(f"band {s!r} does not exist; bands: {names}", value=s, allowed=names)
            out.extend(hits)
        return out

    def select(self, *selectors, opt_names=None, **kwargs) -> "Image":
        """Bands by name, regex or index: ``select('B4', 'B3')``, ``select(['B.*'], ['x'])``."""
        if "bandSelectors" in kwargs:
            selectors = (kwargs.pop("bandSelectors"),)
        opt_names = kwargs.pop("newNames", opt_names)
        if kwargs:
            raise InvalidArgument(f"unknown arguments {sorted(kwargs)}", value=sorted(kwargs))
        if len(selectors) == 2 and isinstance(selectors[0], (list, tuple)) and isinstance(selectors[1], (list, tuple)):
            selectors, opt_names = selectors[0], selectors[1]
        elif len(selectors) == 1 and isinstance(selectors[0], (list, tuple)):
            selectors = selectors[0]
        idx = self._indices(selectors)
        bands = [self._node.bands[i] for i in idx]
        if opt_names is not None:
            if len(opt_names) != len(bands):
                raise InvalidArgument(f"new names {list(opt_names)} must match the {len(bands)} selected bands",
                                      value=list(opt_names))
            bands = [b.renamed(n) for b, n in zip(bands, opt_names)]
        return self._derive(Node("select", (self._node, tuple(idx)), tuple(bands)), keep_id=True)

    def rename(self, *names) -> "Image":
        if len(names) == 1 and isinstance(names[0], (list, tuple)):
            names = tuple(names[0])
        n = len(self._node.bands)
        if len(names) != n or len(set(names)) != n or not all(isinstance(x, str) for x in names):
            raise InvalidArgument(f"rename needs {n} distinct names, got {list(names)}", value=list(names))
        bands = [b.renamed(x) for b, x in zip(self._node.bands, names)]
        return self._derive(Node("select", (self._node, tuple(range(n))), tuple(bands)), keep_id=True)

    def addBands(self, srcImg: "Image", names=None, overwrite: bool = False) -> "Image":
        other = _as_image(srcImg)
        if names is not None:
            other = other.select(list(names))
        mine = list(self._node.bands)
        theirs = list(other._node.bands)
        order = list(range(len(mine)))
        for j, b in enumerate(theirs):
            existing = [i for i in order if i < len(mine) and mine[i].name == b.name]
            if existing:
                if not overwrite:
                    raise InvalidArgument(
                        f"band {b.name!r} already exists; rename it or pass overwrite=True",
                        value=b.name, allowed="distinct band names")
                order[order.index(existing[0])] = len(mine) + j
            else:
                order.append(len(mine) + j)
        allb = mine + theirs
        node = Node("addBands", (self._node, other._node, tuple(order)), tuple(allb[i] for i in order))
        return self._derive(node, keep_id=True)

    # masks ------------------------------------------------------------------------------
    def mask(self, mask: "Image | float | None" = None) -> "Image":
        """No argument: the mask as an image (0 invalid .. 1 valid). With one: replace the mask."""
        if mask is None:
            bands = tuple(BandInfo(b.name, "float32", b.grid, "mask") for b in self._node.bands)
            return self._derive(Node("mask_get", (self._node,), bands), keep_id=True)
        m = self._mask_operand(mask, "mask")
        return self._derive(Node("mask_set", (self._node, m._node), self._node.bands), keep_id=True)

    def _mask_operand(self, mask, what: str) -> "Image":
        m = _as_image(mask)
        n, k = len(self._node.bands), len(m._node.bands)
        if k != 1 and k != n:
            raise InvalidArgument(f"{what} image has {k} bands; allowed: 1 or {n} (the image's band count)",
                                  value=k, allowed=[1, n])
        return m

    def updateMask(self, mask) -> "Image":
        """Narrow the mask: new mask = old mask x ``mask`` (one band applies to all)."""
        m = self._mask_operand(mask, "updateMask")
        return self._derive(Node("updateMask", (self._node, m._node), self._node.bands), keep_id=True)

    def unmask(self, value=None, sameFootprint: bool = True) -> "Image":
        """Fill masked pixels (mask 0) with ``value`` (default 0) and its mask."""
        if not isinstance(sameFootprint, (bool, np.bool_)):
            raise InvalidArgument(f"unmask sameFootprint {sameFootprint!r:.40} must be True or False",
                                  value=repr(sameFootprint)[:40], allowed=[True, False])
        fill = _as_image(0 if value is None else value)
        fill = self._mask_operand(fill, "unmask value")
        values = fill._node.args if fill._node.op == "constant" else (None,) * len(fill._node.bands)
        fills = list(zip(fill._node.bands, values))
        if len(fills) == 1:
            fills *= len(self._node.bands)
        bands = [BandInfo(b.name, _unmask_dtype(b.dtype, f, v), b.grid, b.kind, b.classes, b.units, b.description)
                 for b, (f, v) in zip(self._node.bands, fills)]
        node = Node("unmask", (self._node, fill._node, bool(sameFootprint)), tuple(bands))
        return self._derive(node, keep_id=True)

    def selfMask(self) -> "Image":
        """Use the image's own values as its mask (zeros become masked)."""
        return self._derive(Node("selfMask", (self._node,), self._node.bands), keep_id=True)

    def reduceRegion(self, reducer, geometry, scale=None, crs=None, maxPixels=10_000_000) -> dict:  # noqa: N802
        """Statistics of the image's valid pixels inside ``geometry`` (see :mod:`viewer.core.regions`)."""
        return reduce_region(self, reducer, geometry, scale, crs, maxPixels)

    def clip(self, geometry) -> "Image":
        geo = to_geojson(geometry)
        return self._derive(Node("clip", (self._node, geo), self._node.bands), keep_id=True)

    def resample(self, mode: str = "bilinear") -> "Image":
        if mode not in RESAMPLING:
            raise InvalidArgument(f"resample mode {mode!r} is not allowed; allowed: bilinear, bicubic, nearest",
                                  value=mode, allowed=["bilinear", "bicubic", "nearest"])
        return self._derive(Node("resample", (self._node, mode), self._node.bands), keep_id=True)

    # arithmetic -------------------------------------------------------------------------
    def _binary(self, op: str, other) -> "Image":
        o = _as_image(other)
        a, b = self._node.bands, o._node.bands
        if len(a) != len(b) and len(a) != 1 and len(b) != 1:
            raise InvalidArgument(f"{op}: band counts {len(a)} and {len(b)} differ; allowed: equal counts or one "
                                  "single-band operand", value=(len(a), len(b)))
        if len(a) == 1 and len(b) > 1:
            pairs = [(a[0], y) for y in b]
            names = [y.name for y in b]
        else:
            pairs = list(zip(a, b)) if len(b) > 1 else [(x, b[0]) for x in a]
            names = [x.name for x in a]
        bands = []
        for (x, y), name in zip(pairs, names):
            grid = x.grid if x.grid is not None else y.grid
            kind = "mask" if op in COMPARISONS and x.kind == "mask" else (
                "class" if op in COMPARISONS or op in INTEGER_OPS else "continuous")
            if op in COMPARISONS:
                kind = "class"
            bands.append(BandInfo(name, _result_dtype(op, x, y), grid, kind))
        return self._derive(Node("binary", (op, self._node, o._node), tuple(bands)))

    def add(self, o): return self._binary("add", o)
    def subtract(self, o): return self._binary("subtract", o)
    def multiply(self, o): return self._binary("multiply", o)
    def divide(self, o): return self._binary("divide", o)
    def max(self, o): return self._binary("max", o)
    def min(self, o): return self._binary("min", o)
    def pow(self, o): return self._binary("pow", o)
    def gt(self, o): return self._binary("gt", o)
    def gte(self, o): return self._binary("gte", o)
    def lt(self, o): return self._binary("lt", o)
    def lte(self, o): return self._binary("lte", o)
    def eq(self, o): return self._binary("eq", o)
    def neq(self, o): return self._binary("neq", o)
    def And(self, o): return self._binary("And", o)
    def Or(self, o): return self._binary("Or", o)
    def bitwiseAnd(self, o): return self._binary("bitwiseAnd", o)
    def bitwiseOr(self, o): return self._binary("bitwiseOr", o)
    def leftShift(self, o): return self._binary("leftShift", o)
    def rightShift(self, o): return self._binary("rightShift", o)

    def _unary(self, op: str, dtype: str | None = None, kind: str | None = None) -> "Image":
        bands = tuple(BandInfo(b.name, dtype or ("float64" if op in FLOAT_UNARY else b.dtype), b.grid,
                               kind or b.kind) for b in self._node.bands)
        return self._derive(Node("unary", (op, self._node), bands))

    def Not(self): return self._unary("Not", "uint8", "class")
    def abs(self): return self._unary("abs")
    def sqrt(self): return self._unary("sqrt")
    def log(self): return self._unary("log")
    def exp(self): return self._unary("exp")
    def toFloat(self): return self._unary("toFloat", "float32", "continuous")
    def toDouble(self): return self._unary("toDouble", "float64", "continuous")

    __add__, __sub__, __mul__, __truediv__ = add, subtract, multiply, divide
    __gt__, __ge__, __lt__, __le__ = gt, gte, lt, lte
    __and__, __or__ = And, Or

    def __invert__(self): return self.Not()

    def normalizedDifference(self, bandNames=None) -> "Image":
        """(first - second) / (first + second) as band ``nd`` (masked where the sum is 0)."""
        if bandNames is not None and not isinstance(bandNames, (list, tuple)):
            raise InvalidArgument(f"normalizedDifference bandNames {bandNames!r:.80} must be a list of 2 band names",
                                  value=bandNames, allowed="[first, second]")
        src = self.select(list(bandNames)) if bandNames is not None else self.select([0, 1])
        if len(src._node.bands) != 2:
            raise InvalidArgument(f"normalizedDifference needs exactly 2 bands, got {list(src.bandNames())}",
                                  value=list(src.bandNames()), allowed=2)
        band = BandInfo("nd", "float32", src._node.bands[0].grid)
        return self._derive(Node("normalizedDifference", (src._node,), (band,)))

    def visualize(self, bands=None, gain=None, bias=None, min=None, max=None, gamma=None, opacity=None,
                  palette=None, forceRgbOutput: bool = False) -> "Image":  # noqa: A002
        """An 8-bit RGB image (``vis-red``, ``vis-green``, ``vis-blue``), Earth Engine style."""
        src = self.select(list(bands) if isinstance(bands, (list, tuple)) else
                          [b.strip() for b in bands.split(",")] if isinstance(bands, str) else bands) \
            if bands is not None else self
        if palette is not None and len(src._node.bands) != 1:
            raise palette_band_error([b.name for b in src._node.bands], bands is not None)
        if bands is None and len(src._node.bands) not in (1, 3):
            src = src.select([0])
        vis = normalize_vis({"gain": gain, "bias": bias, "min": min, "max": max, "gamma": gamma,
                             "opacity": opacity, "palette": palette}, len(src._node.bands))
        grid = src._node.bands[0].grid
        out = tuple(BandInfo(n, "uint8", grid, "continuous") for n in VIS_BANDS)
        return self._derive(Node("visualize", (src._node, vis), out))

    # Earth Engine-friendly guard against accidental truthiness
    def __bool__(self) -> bool:
        return True


def _is_picture(value: Any) -> bool:
    """A W&B ``data_or_path``: an array of 2+ dimensions, a Pillow image or an ``os.PathLike`` path
    (a plain string is an asset id unless W&B keywords come with it)."""
    return (isinstance(value, np.ndarray) and value.ndim >= 2) or isinstance(value, (PIL.Image.Image, os.PathLike))


def _unmask_dtype(dtype: str, fill: BandInfo, value: float | None) -> str:
    """The type of a band unmasked with ``fill``: one that holds both, as Earth Engine's type union
    (uint16 unmasked with -9999 is int32); an integer constant that fits keeps the band's type."""
    if value is not None and np.dtype(fill.dtype).kind in "iu":
        return np.result_type(dtype, np.min_scalar_type(int(value))).name
    return np.result_type(dtype, fill.dtype).name


def _as_image(value) -> Image:
    if isinstance(value, Image):
        return value
    if isinstance(value, (int, float, np.integer, np.floating, list, tuple)) and not isinstance(value, bool):
        return Image(_node=constant_node(value))
    raise InvalidArgument(f"{value!r} is not an Image or a number", value=value, allowed="Image or number")
