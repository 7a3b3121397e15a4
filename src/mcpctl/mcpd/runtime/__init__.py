"""Runtimes that run MCP server instances: process, docker, external (see ``base.py``)."""
