"""Work above the core that runs outside the server's event loop: big file exports on a Dask cluster
(:mod:`viewer.jobs.big_export`) and the loop of a map-tile render process
(:mod:`viewer.jobs.render_worker`).

Kept out of :mod:`viewer.core`, which imports no web framework (Dask's ``distributed`` imports
tornado); the server, the CLI, the app and notebooks use it. Importing this package loads
nothing heavy: ``distributed`` loads with :mod:`viewer.jobs.big_export`.
"""
