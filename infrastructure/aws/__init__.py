"""AWS adapters (boto3). Imported only by the entrypoints that need AWS."""
