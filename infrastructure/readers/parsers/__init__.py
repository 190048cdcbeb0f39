"""Parsers: a file that passed the guards, to RawSheets of text columns."""
