"""`python -m mcpctl.mcpd` is `mcpd`."""

from mcpctl.mcpd.cli import main

main()
