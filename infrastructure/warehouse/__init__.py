"""Warehouse adapters, one module each, so that importing one never loads another's
driver. Every SQL statement they run is built in ``sql``."""
