"""Fuzz targets and their seed corpus; see fuzz/README.md."""
