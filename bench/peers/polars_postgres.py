"""polars (calamine) into PostgreSQL through ADBC: ``python polars_postgres.py XLSX URL TABLE``.

The two lines a user who knows the ecosystem writes. polars creates the table
from the frame's types (Int64, Float64, String; no primary key, no checks).
"""

import sys

import polars as pl

xlsx, url, table = sys.argv[1:4]
frame = pl.read_excel(xlsx, engine="calamine")
frame.write_database(table, url, engine="adbc")
