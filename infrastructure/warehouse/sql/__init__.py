"""Every SQL statement the warehouse adapters run, one module per concern.

``dialect`` quotes identifiers (the only place that does) and says what differs
between engines; ``ddl`` makes, describes and locks tables; ``merge`` moves staged
rows into them; ``ledger`` reads and writes the load ledger; ``redshift`` adds what
only Redshift runs (table attributes, staging, COPY, LOCK).
"""
