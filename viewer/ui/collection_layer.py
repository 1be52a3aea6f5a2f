"""A collection on the map: one image (or a reducer over a date window) at a time, with a time slider.

``CollectionLayer`` is the state: the collection, its steps (each image by acquisition
time, or with a reducer one composite per window of ``window_days`` starting at each
distinct date) and the chosen step. Choosing a step sets the map layer's ``image``, which
re-registers the layer (new token, new tile URL). ``TimeSlider`` is its widgets.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import panel as pn
import param

from ..core.collection import Date, ImageCollection
from ..core.errors import InvalidArgument
from ..core.image import Image
from .notify import guarded
from .state import LayerState, make_layer

__all__ = ["CollectionLayer", "TimeSlider", "Step", "REDUCERS", "time_of", "date_label", "make_collection_layer"]

#: Reducers the time slider offers over a date window ("" = one image at a time).
REDUCERS = ("", "mosaic", "median", "mean", "min", "max")
DAY_MS = 86_400_000


def time_of(image: Image) -> float | None:
    """``system:time_start`` in milliseconds (``None`` for an undated image)."""
    t = image.get("system:time_start")
    return None if t is None else float(t)


def date_label(millis: float | None) -> str:
    if millis is None:
        return "undated"
    return dt.datetime.fromtimestamp(millis / 1000, dt.timezone.utc).strftime("%Y-%m-%d")


def _short_id(image: Image, i: int) -> str:
    info_id = image.getInfo().get("id")
    return info_id.rsplit("/", 1)[-1] if info_id else f"image {i + 1}"


@dataclass(frozen=True)
class Step:
    """One position of the slider: its label, start time, the images it covers and the image shown."""

    label: str
    start: float | None
    images: tuple[Image, ...]
    image: Image


class CollectionLayer(param.Parameterized):
    """The state of a collection layer: which step of the collection the map layer shows."""

    index = param.Integer(default=0, bounds=(0, None), doc="The step shown.")
    reducer = param.Selector(default="", objects=list(REDUCERS),
                             doc="'' one image per step; else this reducer over each date window.")
    window_days = param.Number(default=1.0, bounds=(1 / 24, 3660), doc="Length of a date window (reducers).")

    def __init__(self, collection: ImageCollection, layer: LayerState, **params: Any) -> None:
        if not isinstance(collection, ImageCollection):
            raise InvalidArgument(f"{collection!r} is not a viewer.ImageCollection", value=repr(collection)[:80],
                                  allowed="viewer.ImageCollection")
        if collection.size() == 0:
            raise InvalidArgument("the collection is empty (after filtering); nothing to show", value=0,
                                  allowed="at least one image")
        self.collection = collection
        self.layer = layer
        self.steps: list[Step] = []
        super().__init__(**params)
        self._rebuild()

    # steps ------------------------------------------------------------------------------
    def images_by_time(self) -> list[Image]:
        """The collection's images, dated ones by acquisition time (stable), undated ones after."""
        images = list(self.collection)
        dated = sorted((i for i in images if time_of(i) is not None), key=time_of)
        return dated + [i for i in images if time_of(i) is None]

    def make_steps(self) -> list[Step]:
        images = self.images_by_time()
        if not self.reducer:
            return [Step(f"{date_label(time_of(img))} · {_short_id(img, i)}", time_of(img), (img,), img)
                    for i, img in enumerate(images)]
        dated = [i for i in images if time_of(i) is not None]
        if not dated:
            raise InvalidArgument("a reducer over date windows needs dated images (system:time_start); this "
                                  "collection has none", value=self.reducer, allowed="'' (one image at a time)")
        span = self.window_days * DAY_MS
        starts = sorted({math.floor(time_of(i) / DAY_MS) * DAY_MS for i in dated})
        steps = []
        for t0 in starts:
            window = tuple(i for i in dated if t0 <= time_of(i) < t0 + span)
            label = date_label(t0) + (f" + {self.window_days:g} d" if self.window_days != 1 else "")
            label += f" · {self.reducer} of {len(window)}"
            steps.append(Step(label, t0, window, getattr(ImageCollection(list(window)), self.reducer)()))
        return steps

    @param.depends("reducer", "window_days", watch=True)
    def _rebuild(self) -> None:
        old = self.steps[self.index].start if self.steps and self.index < len(self.steps) else None
        self.steps = self.make_steps()
        index = next((i for i, s in enumerate(self.steps) if s.start is not None and s.start >= (old or 0)), 0)
        self.param.index.bounds = (0, len(self.steps) - 1)
        if index != self.index:
            self.index = index  # shows the step (watcher below)
        else:
            self._show()

    @param.depends("index", watch=True)
    def _show(self) -> None:
        if not 0 <= self.index < len(self.steps):
            raise InvalidArgument(f"step {self.index} is not allowed; allowed: 0..{len(self.steps) - 1}",
                                  value=self.index, allowed=f"0..{len(self.steps) - 1}")
        image = self.steps[self.index].image
        if self.layer.image is not image:
            self.layer.image = image

    @property
    def step(self) -> Step:
        return self.steps[self.index]

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.steps]

    def show_date(self, date: Any) -> Step:
        """Show the first step starting on or after ``date`` (ISO string, datetime, ms or ``viewer.Date``)."""
        millis = Date(date).millis()
        for i, s in enumerate(self.steps):
            if s.start is not None and s.start >= millis:
                self.index = i
                return s
        raise InvalidArgument(f"no step on or after {date!r}; steps: {self.labels}", value=str(date),
                              allowed=self.labels)


class TimeSlider(pn.viewable.Viewer):
    """The widgets of a :class:`CollectionLayer`: a slider over its steps, reducer and window length."""

    def __init__(self, time: CollectionLayer, **params: Any) -> None:
        super().__init__(**params)
        self.time = time
        self.slider = pn.widgets.DiscreteSlider(label=time.layer.name, options=self._options(), value=time.index,
                                                sizing_mode="stretch_width")
        self.reducer = pn.widgets.Select.from_param(time.param.reducer, label="composite", width=110)
        self.reducer.options = {"one image": "", **{r: r for r in REDUCERS if r}}
        self.window = pn.widgets.FloatInput.from_param(time.param.window_days, label="window (days)", width=100)
        self.slider.param.watch(guarded("time slider")(lambda e: setattr(time, "index", e.new)), "value")
        time.param.watch(guarded("time slider")(lambda e: self._pull()), ["index", "reducer", "window_days"])

    def _options(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.time.labels)}

    def _pull(self) -> None:
        options = self._options()
        if self.slider.options != options:
            self.slider.options = options
        if self.slider.value != self.time.index:
            self.slider.value = self.time.index

    def __panel__(self):
        return pn.Column(self.slider, pn.Row(self.reducer, self.window), sizing_mode="stretch_width")


def make_collection_layer(collection: ImageCollection, vis_params: dict | None, name: str, shown: bool,
                          opacity: float, reducer: str = "", window_days: float = 1.0) -> LayerState:
    """A map layer showing one step of ``collection`` at a time; its :class:`CollectionLayer` is ``layer.time``.

    The visualization (Earth Engine defaults where ``vis_params`` is silent) is set from the first
    image and kept for every step, so dates compare at the same stretch.
    """
    if not isinstance(collection, ImageCollection):
        raise InvalidArgument(f"{collection!r} is not a viewer.ImageCollection", value=repr(collection)[:80],
                              allowed="viewer.ImageCollection")
    if collection.size() == 0:
        raise InvalidArgument("the collection is empty (after filtering); nothing to show", value=0,
                              allowed="at least one image")
    first = sorted(collection, key=lambda i: (time_of(i) is None, time_of(i) or 0))[0]
    layer = make_layer(first, vis_params, name, shown, opacity)
    layer.time = CollectionLayer(collection, layer, reducer=reducer, window_days=window_days)
    return layer
