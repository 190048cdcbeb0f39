"""Checks on a file's bytes and zip directory before any parser sees them."""
