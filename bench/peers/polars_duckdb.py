"""polars (calamine) into DuckDB: ``python polars_duckdb.py XLSX DATABASE TABLE``.

The idiomatic two lines: DuckDB reads the polars frame in place (a replacement
scan over its Arrow buffers) and creates the table from its types.
"""

import sys

import duckdb
import polars as pl

xlsx, database, table = sys.argv[1:4]
frame = pl.read_excel(xlsx, engine="calamine")
with duckdb.connect(database) as con:
    con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM frame')
