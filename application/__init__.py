"""Use cases and the ports they need. No boto3, no database driver, no pandas I/O."""
