"""Logs, metrics and outcome notifications: how an operator sees the service."""
