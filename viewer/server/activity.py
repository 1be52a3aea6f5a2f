"""How busy this process's tile endpoint is, so that background work can wait for the map.

After a pan or zoom the browser asks for the new view's tiles while the app computes the
view's statistics in the same process; both want the same cores. :data:`tile_activity` counts
the tile requests in flight and remembers when the last one started or ended;
:meth:`TileActivity.wait_quiet` lets the statistics start once the tiles have been served
(or after a cap, so that a busy server with many users still gets its figures).
"""
from __future__ import annotations

import asyncio
import math
import time

__all__ = ["TileActivity", "tile_activity"]


class TileActivity:
    """Tile requests in flight and the time of the last tile event (``time.monotonic()``).

    Updated on the event loop's thread only (the tile handler's coroutine), so no lock."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.last = -math.inf

    def begin(self) -> None:
        """A tile request arrived."""
        self.in_flight += 1
        self.last = time.monotonic()

    def end(self) -> None:
        """A tile request was answered (or failed)."""
        self.in_flight = max(0, self.in_flight - 1)
        self.last = time.monotonic()

    def quiet_for(self) -> float:
        """Seconds since the last tile event; 0 while a tile request is in flight."""
        if self.in_flight:
            return 0.0
        return time.monotonic() - self.last

    async def wait_quiet(self, quiet: float = 0.15, cap: float = 1.5, step: float = 0.03) -> float:
        """Wait until no tile request is in flight and none started or ended for ``quiet`` s,
        at most ``cap`` s; returns the seconds waited."""
        t0 = time.monotonic()
        while True:
            idle = self.quiet_for()
            waited = time.monotonic() - t0
            if idle >= quiet or waited >= cap:
                return waited
            await asyncio.sleep(min(max(quiet - idle, step), cap - waited))


#: The process's tile endpoint (every :class:`~viewer.server.handlers.TileHandler`).
tile_activity = TileActivity()
