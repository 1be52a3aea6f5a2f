"""Long-running jobs above the core: big file exports on a Dask cluster (:mod:`viewer.jobs.big_export`).

Kept out of :mod:`viewer.core`, which imports no web framework (Dask's ``distributed`` imports
tornado); the server, the CLI, the app and notebooks use it. Importing this package loads
nothing heavy: ``distributed`` loads with :mod:`viewer.jobs.big_export`.
"""
