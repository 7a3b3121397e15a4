.PHONY: up test bootstrap bench

# Install (with the starter server mcp-server-time), then run mcpd (SQLite) and mcplocal with
# the CLI logged in and a starter project served at http://127.0.0.1:7461/projects/starter/mcp.
# Ctrl-C stops everything.
up: bootstrap
	.venv/bin/mcpctl up

# Everything CI runs: lint, types, import contracts, tests (SQLite and PostgreSQL).
test:
	scripts/test

bootstrap:
	scripts/bootstrap

bench: bootstrap
	.venv/bin/python -m bench
