"""Benchmark of ``datalakep ingest`` against the baseline a user writes and the floor.

Run it with ``scripts/bench`` (``python -m bench --help`` lists the options). Every
contender runs in a child process of its own so wall time and peak RSS are that
process's, read from the OS; this package's modules therefore import only the
standard library at module level.
"""
