"""The ingestion domain: contracts, routing, validation and the ledger's vocabulary.

Nothing here performs I/O: no boto3, no database driver, no pandas readers.
"""
