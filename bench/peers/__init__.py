"""The fastest scripts a user could write, as files: each is run as ``python FILE ARGS``.

They are whole programs on purpose (imports and start-up count, as for
``datalakep ingest``) and carry no harness code: the benchmark counts the rows
each one loaded from the database afterwards.
"""
