.PHONY: up test bootstrap bench

# Run mcpd on the embedded default (SQLite) with the CLI logged in to it. Ctrl-C stops it.
up: bootstrap
	.venv/bin/mcpctl up

# Everything CI runs: lint, types, import contracts, tests (SQLite and PostgreSQL).
test:
	scripts/test

bootstrap:
	scripts/bootstrap

bench: bootstrap
	.venv/bin/python -m bench
