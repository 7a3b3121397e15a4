"""Conformance parity: ``@modelcontextprotocol/conformance`` scores our fixture server
(conformance_server.py, every fixture its scenarios call) directly, in its own streamable-HTTP
mode, and through mcplocal (a one-server project with ``toolPrefix: never``: conformance →
mcplocal → mcpd relay → the same server, run by mcpd's process runtime over stdio).

Directly, every check passes except two recommendations the SDK cannot meet for the suite's
2025-03-26 SSE-polling request, so each check through mcplocal has something real to match.
Every check must end the same way on both paths, except the scenarios in KNOWN_GAPS, which
must end otherwise through mcplocal, for the reason given: when one starts to end the same
way, the test fails, so that list and docs/conformance.md get updated.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from tests.conftest import LiveMcpd
from tests.interop.tools import (
    CONFORMANCE,
    NODE22,
    Check,
    conformance_argv,
    conformance_server_spec,
    node22_env,
    read_results,
    require,
)
from tests.mcplocal.conftest import apply_project, define_servers, serve_mcplocal

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# Scenario -> (why it ends otherwise through mcplocal, text its checks show for that reason).
KNOWN_GAPS = {
    "server-sse-multiple-streams": (
        "mcplocal answers a request without progress as application/json, not as an SSE "
        "stream (docs/mcplocal.md); the suite rates that INFO, not a failure",
        "SSE streaming is optional",
    ),
    "server-sse-polling": (
        "the same: the call it polls is answered as JSON, so the suite's SSE resumption checks "
        "do not apply (INFO)",
        "Server returned JSON instead of SSE stream",
    ),
}
# SEP-1699 recommendations the SDK meets only for 2025-11-25 requests with an event store,
# while the suite polls with a 2025-03-26 request; not failures, and the same on both paths.
DIRECT_WARNINGS = {
    ("server-sse-polling", "server-sse-priming-event"),
    ("server-sse-polling", "server-sse-retry-field"),
}


async def score(url: str, output_dir: Path) -> list[Check]:
    await anyio.Path(output_dir).mkdir()
    done = await anyio.run_process(
        conformance_argv(url, output_dir), check=False, env=node22_env(), stderr=None
    )
    assert done.returncode in (0, 1), done.stdout.decode()  # 1: some checks failed
    return read_results(output_dir)


def by_scenario(checks: list[Check]) -> dict[str, dict[str, Check]]:
    scenarios: dict[str, dict[str, Check]] = {}
    for c in checks:
        assert c.check not in scenarios.setdefault(c.scenario, {}), c  # ids are unique
        scenarios[c.scenario][c.check] = c
    return scenarios


def offered(checks: dict[str, Check], kind: str) -> list[str]:
    names: list[str] = checks[f"{kind}-list"].details[kind]
    return names


@pytest.mark.parametrize("answers", ["json", "sse"])
async def test_a_server_scores_the_same_through_mcplocal_as_directly(
    live_mcpd: LiveMcpd, conformance_http: str, tmp_path: Path, answers: str
) -> None:
    """With mcplocal's default JSON answers, as KNOWN_GAPS says; with ``answers: sse``
    (SSE streams, as the SDK servers answer), every scenario ends as it does directly."""
    require(NODE22, CONFORMANCE)
    define_servers(live_mcpd, fixtures=conformance_server_spec())
    apply_project(live_mcpd, "conformance", ["fixtures"], toolPrefix="never")
    gaps = KNOWN_GAPS if answers == "json" else {}

    direct = by_scenario(await score(conformance_http, tmp_path / "direct"))
    async with serve_mcplocal(live_mcpd, answers=answers) as mcplocal:
        proxied = by_scenario(await score(mcplocal.url("conformance"), tmp_path / "mcplocal"))

    # The fixture server meets every check, so each one below compares real behaviour.
    assert len(direct) >= 32
    assert {
        (s, c.check, c.status)
        for s, checks in direct.items()
        for c in checks.values()
        if c.status != "SUCCESS" and c.status != "INFO"
    } == {(s, c, "WARNING") for s, c in DIRECT_WARNINGS}
    assert set(proxied) == set(direct)

    for scenario, theirs in direct.items():
        mine = proxied[scenario]
        outcome = {k: c.status for k, c in mine.items()}
        if scenario in gaps:
            reason, evidence = gaps[scenario]
            assert outcome != {k: c.status for k, c in theirs.items()}, (
                f"{scenario} now ends as it does directly; it was a known gap ({reason}): "
                "update KNOWN_GAPS and docs/conformance.md"
            )
            shown = [json.dumps([c.message, c.details]) for c in mine.values()]
            assert any(evidence in text for text in shown), (scenario, mine)
        else:
            assert outcome == {k: c.status for k, c in theirs.items()}, (scenario, theirs, mine)

    # What the server offers arrives unchanged: same names, same order (toolPrefix never).
    for kind in ("tools", "prompts", "resources"):
        assert offered(proxied[f"{kind}-list"], kind) == offered(direct[f"{kind}-list"], kind)
