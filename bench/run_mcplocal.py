"""``python bench/run_mcplocal.py serve ...``: mcplocal's entry point as a script, so the
benchmarks can run it under ``python -m cProfile`` (MCPCTL_BENCH_PROFILE) like mcpd."""

from mcpctl.mcplocal.cli import main

if __name__ == "__main__":
    main()
