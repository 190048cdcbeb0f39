"""FileSource adapters."""
