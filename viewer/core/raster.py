"""``Raster``: the one value type pixels travel in (evaluation results, in-memory arrays, display bands).

Modelled on rio-tiler's ``ImageData`` with this project's one mask polarity: every band
carries values (a 2-D array in its own dtype) and a mask in Earth Engine's sense (float32
in [0, 1], 0 = masked, 1 = valid, ``None`` = valid everywhere). A raster also knows its
grid and its bands' metadata (names, declared dtypes, class tables) from the graph.

The mask algebra lives here as methods: :meth:`Band.narrowed` (EE ``updateMask``: the
product), :meth:`Band.min_mask` (the mask of a pixel computed from two bands),
:meth:`Raster.mask` (where every band is valid) and the lazy :class:`Footprint`
(``&``, ``|``) that ``unmask(sameFootprint=True)`` needs. Values are never copied by
these types; every method returns a new object.

A band read from a file may carry a :class:`Written` mask: which pixels the read wrote, with
the values 0 elsewhere, computed only when something asks for the mask (``Raster.raw`` does
not need it, so a raw ``computePixels`` never builds it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from .graph import BandInfo
from .grid import Grid

__all__ = ["Raster", "Band", "Footprint", "Written", "EVERYWHERE"]


class Footprint:
    """Which grid pixels lie inside the data (bool H x W), computed at most once; ``None`` = everywhere."""

    __slots__ = ("_compute", "_done", "_value")

    def __init__(self, compute: Callable[[], np.ndarray | None] | None = None) -> None:
        self._compute = compute
        self._done = compute is None
        self._value: np.ndarray | None = None

    def __call__(self) -> np.ndarray | None:
        if not self._done:
            self._value = self._compute()  # type: ignore[misc]
            self._done, self._compute = True, None
        return self._value

    def __and__(self, other: "Footprint") -> "Footprint":
        if self is EVERYWHERE:
            return other
        if other is EVERYWHERE or other is self:
            return self

        def both() -> np.ndarray | None:
            a, b = self(), other()
            if a is None:
                return b
            return a if b is None else a & b
        return Footprint(both)

    def __or__(self, other: "Footprint") -> "Footprint":
        if self is EVERYWHERE or other is EVERYWHERE:
            return EVERYWHERE

        def either() -> np.ndarray | None:
            a, b = self(), other()
            return None if a is None or b is None else a | b
        return Footprint(either)


#: The footprint of data valid everywhere (constants).
EVERYWHERE = Footprint()


class Written:
    """The mask of a read: 1 where it wrote a pixel, 0 where not, and the band's values are 0
    wherever it is 0. Holds an array (or ``None``: every pixel written) or computes it once."""

    __slots__ = ("_compute", "_done", "_value")

    def __init__(self, value: np.ndarray | None = None,
                 compute: Callable[[], np.ndarray | None] | None = None) -> None:
        self._compute, self._value, self._done = compute, value, compute is None

    def __call__(self) -> np.ndarray | None:
        if not self._done:
            self._value = self._compute()  # type: ignore[misc]
            self._done, self._compute = True, None
        return self._value


def _mul(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    return a if b is None else a * b


def _min(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None or a is b:
        return b
    return a if b is None else np.minimum(a, b)


class Band:
    """One band of a :class:`Raster`: ``values``, ``mask`` (EE polarity, ``None`` = valid) and ``footprint``.

    ``mask`` may be given as a :class:`Written` (resolved on first access of ``band.mask``).
    """

    __slots__ = ("values", "_mask", "footprint")

    def __init__(self, values: np.ndarray, mask: np.ndarray | Written | None = None,
                 footprint: Footprint = EVERYWHERE) -> None:
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "_mask", mask)
        object.__setattr__(self, "footprint", footprint)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"Band is immutable; cannot set {name!r}")

    def __repr__(self) -> str:
        return f"Band({self.values.dtype}{list(self.values.shape)}, masked={self.mask is not None})"

    @property
    def mask(self) -> np.ndarray | None:
        m = self._mask
        return m() if isinstance(m, Written) else m

    def mask_or_ones(self) -> np.ndarray:
        """The mask as an array (ones where it is ``None``)."""
        return np.ones(self.values.shape, np.float32) if self.mask is None else self.mask

    def with_values(self, values: np.ndarray) -> "Band":
        return Band(values, self.mask, self.footprint)

    def narrowed(self, mask: np.ndarray | None) -> "Band":
        """Earth Engine's ``updateMask``: the mask times ``mask`` (it only narrows)."""
        return Band(self.values, _mul(self.mask, mask), self.footprint)

    def min_mask(self, other: "Band") -> np.ndarray | None:
        """The mask of a pixel computed from this band and ``other``: the smaller of both."""
        return _min(self.mask, other.mask)

    def as_mask(self) -> np.ndarray | None:
        """The values used as a mask: clipped to [0, 1], NaN and masked pixels 0; ``None`` if all 1."""
        v = self.values
        if v.dtype == np.uint8 and self.mask is None and v.max(initial=0) <= 1:
            m = v.astype(np.float32)
        else:
            m = np.clip(v, 0, 1).astype(np.float32, copy=False)
            m = np.where(np.isnan(m), 0, m).astype(np.float32, copy=False)
        if self.mask is not None:
            m = m * self.mask
        return None if m.min(initial=1) >= 1 else m

    def raw(self, dtype: str | np.dtype) -> np.ndarray:
        """Values in ``dtype`` with masked pixels 0 (Earth Engine's raw outputs); floats round to integers."""
        v = self.values
        if not isinstance(self._mask, Written) and self.mask is not None:  # a Written mask: already 0
            v = np.where(self.mask > 0, v, 0)
        dt = np.dtype(dtype)
        if dt.kind in "iu" and v.dtype.kind == "f":
            v = np.rint(v)
        return np.asarray(v).astype(dt, copy=False)


@dataclass(frozen=True, eq=False)
class Raster:
    """Bands on one grid: a sequence of :class:`Band` plus the bands' graph metadata.

    ``raster[i]`` is band ``i``; ``len(raster)`` the band count; iterating yields bands.
    """

    bands: tuple[Band, ...]
    grid: Grid
    info: tuple[BandInfo, ...] = ()

    @classmethod
    def from_arrays(cls, values: Sequence[np.ndarray], masks: Sequence[np.ndarray | None] | None, grid: Grid,
                    names: Sequence[str] | None = None) -> "Raster":
        """A raster from per-band 2-D arrays (and masks); band names default to ``b1, b2, ...``."""
        masks = list(masks) if masks is not None else [None] * len(values)
        names = list(names) if names is not None else [f"b{i + 1}" for i in range(len(values))]
        info = tuple(BandInfo(n, np.asarray(v).dtype.name, grid) for n, v in zip(names, values))
        return cls(tuple(Band(np.asarray(v), m) for v, m in zip(values, masks)), grid, info)

    # sequence of bands --------------------------------------------------------------------
    def __getitem__(self, i: int) -> Band:
        return self.bands[i]

    def __len__(self) -> int:
        return len(self.bands)

    def __iter__(self) -> Iterator[Band]:
        return iter(self.bands)

    # metadata -----------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return len(self.bands)

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.info]

    @property
    def dtypes(self) -> list[str]:
        """The declared dtypes of the bands (from the graph)."""
        return [b.dtype for b in self.info]

    @property
    def classes(self) -> list[tuple]:
        """Each band's class table (``BandInfo.classes`` form; ``()`` for non-class bands)."""
        return [b.classes for b in self.info]

    @property
    def values(self) -> list[np.ndarray]:
        return [b.values for b in self.bands]

    @property
    def masks(self) -> list[np.ndarray | None]:
        return [b.mask for b in self.bands]

    # mask algebra -------------------------------------------------------------------------
    def mask(self) -> np.ndarray | None:
        """Where every band is valid: the minimum of the band masks (``None`` = everywhere)."""
        out = None
        for b in self.bands:
            out = _min(out, b.mask)
        return out

    def footprint(self) -> Footprint:
        """Where every band has data (lazy)."""
        fp = self.bands[0].footprint
        for b in self.bands[1:]:
            fp = fp & b.footprint
        return fp

    def raw(self) -> list[np.ndarray]:
        """Each band in its declared dtype with masked pixels set to 0."""
        return [b.raw(i.dtype) for b, i in zip(self.bands, self.info)]

    def __repr__(self) -> str:
        return f"Raster({self.names}, {self.grid.width}x{self.grid.height})"
