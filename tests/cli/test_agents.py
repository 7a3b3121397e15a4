"""Agents, personalities and chat threads from the CLI against a live mcpd: the worked example
of docs/agents.md applied and round-tripped, `get --agent`, `describe agent` with its system
block, `create agent|personality`, deletes with their cascades, and `get|describe|delete
thread`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mcpctl.mcpd.db.engine import create_engine
from mcpctl.mcpd.db.uow import UnitOfWorkFactory
from mcpctl.mcpd.llm.messages import ToolCall
from mcpctl.mcpd.services.threads import NewMessage, ThreadStore
from tests.cli.conftest import Mcpctl
from tests.cli.samples import lines, load_yaml, ok, write
from tests.cli.test_completion import complete, plain
from tests.conftest import LiveMcpd

# The worked example of docs/agents.md (the docs show this file; keep them in step).
EXAMPLE = """\
apiVersion: mcpctl/v1
kind: Llm
metadata:
  name: local
spec:
  provider: openai
  url: http://127.0.0.1:8080/v1
  model: smollm2
---
apiVersion: mcpctl/v1
kind: Agent
metadata:
  name: reviewer
spec:
  llm: local
  systemPrompt: You review code changes for a small team.
  defaultParams:
    temperature: 0.2
    max_tokens: 512
  defaultPersonality: concise
---
apiVersion: mcpctl/v1
kind: Prompt
metadata:
  name: review-checklist
spec:
  agent: reviewer
  priority: 8
  content: Check tests, error handling and naming, in that order.
---
apiVersion: mcpctl/v1
kind: Prompt
metadata:
  name: be-brief
spec:
  content: Answer in at most five sentences.
---
apiVersion: mcpctl/v1
kind: Prompt
metadata:
  name: cite-lines
spec:
  priority: 6
  content: Quote the lines you comment on.
---
apiVersion: mcpctl/v1
kind: Personality
metadata:
  name: reviewer.concise
spec:
  agent: reviewer
  description: Short answers
  prompts:
  - name: be-brief
    priority: 9
  - name: cite-lines
---
apiVersion: mcpctl/v1
kind: Personality
metadata:
  name: reviewer.thorough
spec:
  agent: reviewer
  description: Every finding, with line quotes
  priority: 3
  prompts:
  - name: cite-lines
"""

EXAMPLE_REFS = [
    "llm/local",
    "agent/reviewer",
    "prompt/be-brief",
    "prompt/cite-lines",
    "prompt/review-checklist",
    "personality/reviewer.concise",
    "personality/reviewer.thorough",
]


@pytest.fixture
def example(mcpctl: Mcpctl, tmp_path: Path) -> Path:
    path = write(tmp_path, "reviewer.yaml", EXAMPLE)
    ok(mcpctl("apply", "-f", str(path)))
    return path


def test_the_worked_example_is_the_one_docs_agents_md_shows() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "agents.md"

    assert f"```yaml\n{EXAMPLE}```" in docs.read_text()


def test_the_worked_example_applies_in_one_go_and_again_unchanged(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    path = write(tmp_path, "reviewer.yaml", EXAMPLE)

    first = ok(mcpctl("apply", "-f", str(path)))
    second = ok(mcpctl("apply", "-f", str(path)))

    assert sorted(lines(first)) == sorted(f"{r} created" for r in EXAMPLE_REFS)
    assert sorted(lines(second)) == sorted(f"{r} unchanged" for r in EXAMPLE_REFS)


def test_get_yaml_of_agents_personalities_and_prompts_applies_back_unchanged(
    mcpctl: Mcpctl, example: Path, tmp_path: Path
) -> None:
    dumped = ok(mcpctl("get", "agents,personalities,prompts", "-o", "yaml")).stdout

    again = ok(mcpctl("apply", "-f", "-", stdin=dumped))

    assert sorted(lines(again)) == sorted(f"{r} unchanged" for r in EXAMPLE_REFS[1:])


def test_get_agents_and_personalities_tables(mcpctl: Mcpctl, example: Path) -> None:
    agents = lines(ok(mcpctl("get", "agents")))
    personalities = lines(ok(mcpctl("get", "personalities", "--agent", "reviewer")))

    assert agents[0].split() == ["NAME", "LLM", "PROJECT", "PERSONALITY", "AGE"]
    assert agents[1].split()[:4] == ["reviewer", "local", "<none>", "concise"]
    assert personalities[0].split() == ["NAME", "AGENT", "PRIORITY", "PROMPTS", "AGE"]
    assert [row.split()[:4] for row in personalities[1:]] == [
        ["reviewer.concise", "reviewer", "5", "be-brief,cite-lines"],
        ["reviewer.thorough", "reviewer", "3", "cite-lines"],
    ]


def test_get_agent_filters_prompts_and_personalities_to_one_agent(
    mcpctl: Mcpctl, example: Path
) -> None:
    ok(mcpctl("create", "agent", "writer", "--llm", "local"))
    ok(mcpctl("create", "personality", "concise", "--agent", "writer"))

    prompts = ok(mcpctl("get", "prompts", "--agent", "reviewer", "-o", "name"))
    mine = ok(mcpctl("get", "personalities", "--agent", "writer", "-o", "name"))
    short = ok(mcpctl("get", "personality", "concise", "--agent", "writer", "-o", "name"))
    wrong_kind = mcpctl("get", "servers", "--agent", "reviewer")

    assert lines(prompts) == ["prompt/review-checklist"]
    assert lines(mine) == ["personality/writer.concise"]
    assert lines(short) == ["personality/writer.concise"]
    assert wrong_kind.exit_code == 2
    assert "--agent goes with prompts, personalities and threads" in wrong_kind.stderr


def test_describe_agent_shows_its_personalities_and_system_block(
    mcpctl: Mcpctl, example: Path
) -> None:
    text = ok(mcpctl("describe", "agent", "reviewer")).stdout

    assert "llm: local" in text
    assert "temperature: 0.2" in text
    personalities = text[text.index("Personalities:") : text.index("System block")]
    assert [line.split()[0] for line in personalities.splitlines()[1:]] == [
        "NAME",
        "concise",
        "thorough",
    ]
    assert "concise (default)" in personalities
    block = text[text.index("System block (personality concise):") :].splitlines()
    assert block[1:] == [
        "  # systemPrompt",
        "  You review code changes for a small team.",
        "  # agent prompt review-checklist (priority 8)",
        "  Check tests, error handling and naming, in that order.",
        "  # personality prompt be-brief (priority 9)",
        "  Answer in at most five sentences.",
        "  # personality prompt cite-lines (priority 6)",
        "  Quote the lines you comment on.",
    ]


def test_describe_personality_takes_a_short_name_with_agent(mcpctl: Mcpctl, example: Path) -> None:
    short = ok(mcpctl("describe", "personality", "concise", "--agent", "reviewer")).stdout
    full = ok(mcpctl("describe", "personality/reviewer.concise")).stdout

    assert short.splitlines()[0] == full.splitlines()[0] == "Name:              reviewer.concise"
    assert "prompt/be-brief" in full


def test_create_agent_produces_exactly_the_yaml_form(mcpctl: Mcpctl, example: Path) -> None:
    ok(mcpctl("create", "project", "team"))

    created = load_yaml(
        mcpctl(
            "create", "agent", "helper", "--llm", "local", "--project", "team",
            "--system-prompt", "You help.", "--param", "temperature=0.3", "-o", "yaml",
        )
    )  # fmt: skip

    assert created["spec"] == {
        "llm": "local",
        "project": "team",
        "systemPrompt": "You help.",
        "defaultParams": {"temperature": 0.3},
    }
    assert lines(ok(mcpctl("create", "agent", "solo", "--llm", "local"))) == ["agent/solo created"]


def test_create_agent_with_a_missing_llm_or_personality_exits_3_naming_the_field(
    mcpctl: Mcpctl, example: Path
) -> None:
    no_llm = mcpctl("create", "agent", "x", "--llm", "nope")
    no_personality = mcpctl("create", "agent", "y", "--llm", "local", "--default-personality", "z")
    bad_priority = mcpctl("create", "personality", "p", "--agent", "reviewer", "--prompt", "a=x")

    assert no_llm.exit_code == 3
    assert "spec.llm: llm 'nope' not found" in no_llm.stderr
    assert no_personality.exit_code == 3
    assert "spec.defaultPersonality: personality 'y.z' not found" in no_personality.stderr
    assert bad_priority.exit_code == 3
    assert "--prompt 'a=x'" in bad_priority.stderr
    assert lines(ok(mcpctl("get", "agents", "-o", "name"))) == ["agent/reviewer"]


def test_deleting_an_llm_in_use_exits_5_naming_the_agent(mcpctl: Mcpctl, example: Path) -> None:
    result = mcpctl("delete", "llm", "local")

    assert result.exit_code == 5
    assert "llm/local is in use by agent/reviewer (spec.llm)" in result.stderr


def test_deleting_a_project_clears_it_from_the_agent(mcpctl: Mcpctl, example: Path) -> None:
    ok(mcpctl("create", "project", "team"))
    ok(mcpctl("create", "agent", "helper", "--llm", "local", "--project", "team"))

    ok(mcpctl("delete", "project", "team"))

    assert load_yaml(mcpctl("get", "agent", "helper", "-o", "yaml"))["spec"] == {"llm": "local"}


def test_deleting_an_agent_deletes_its_personalities_and_its_prompts(
    mcpctl: Mcpctl, example: Path
) -> None:
    ok(mcpctl("delete", "personality", "thorough", "--agent", "reviewer"))

    ok(mcpctl("delete", "agent", "reviewer"))

    assert mcpctl("get", "personalities").stderr == "No resources found.\n"
    assert lines(ok(mcpctl("get", "prompts", "-o", "name"))) == [
        "prompt/be-brief",
        "prompt/cite-lines",
    ]


# -- threads -------------------------------------------------------------------------------


@pytest.fixture
def thread_id(example: Path, live_mcpd: LiveMcpd) -> str:
    """A thread of the admin with the reviewer: a question, a tool call, its result, an answer."""

    async def write_thread() -> str:
        settings = live_mcpd.settings
        engine = create_engine(settings.effective_database_url(), schema=settings.database_schema)
        try:
            store = ThreadStore(UnitOfWorkFactory(engine))
            thread = await store.create_thread("reviewer", "admin", "Review my diff")
            call = ToolCall("call-1", "git__git_diff", '{"target": "main"}')
            await store.append(
                thread.id,
                [
                    NewMessage("user", "Review my diff\nagainst main"),
                    NewMessage("assistant", None, (call,)),
                    NewMessage("tool", "+ added a line", (), "call-1"),
                    NewMessage("assistant", "Looks good."),
                ],
            )
            return thread.id
        finally:
            await engine.dispose()

    return asyncio.run(write_thread())


def test_get_threads_lists_them_with_the_agent_filter(mcpctl: Mcpctl, thread_id: str) -> None:
    table = lines(ok(mcpctl("get", "threads")))
    filtered = ok(mcpctl("get", "threads", "--agent", "reviewer", "-o", "name"))
    other = mcpctl("get", "threads", "--agent", "nobody")

    assert table[0].split() == ["ID", "AGENT", "OWNER", "TITLE", "MESSAGES", "LAST", "TURN", "AGE"]
    assert table[1].split()[:3] == [thread_id, "reviewer", "admin"]
    assert "Review my diff" in table[1]
    assert lines(filtered) == [f"thread/{thread_id}"]
    assert other.stderr == "No threads found.\n"


def test_describe_thread_prints_the_conversation(mcpctl: Mcpctl, thread_id: str) -> None:
    text = ok(mcpctl("describe", "thread", thread_id)).stdout

    assert f"Thread:    {thread_id}" in text
    assert "Agent:     reviewer" in text
    assert "Messages:  4" in text
    convo = [line for line in text[text.index("[0]") :].splitlines()]
    assert convo[0].startswith("[0] user · ")
    assert convo[1:3] == ["    Review my diff", "    against main"]
    assert convo[3].startswith("[1] assistant · ")
    assert convo[4] == '    calls git__git_diff({"target": "main"}) (call-1)'
    assert convo[5].startswith("[2] tool · ")
    assert convo[5].endswith(" · result of git__git_diff (call-1)")
    assert convo[6] == "    + added a line"
    assert convo[8] == "    Looks good."


def test_delete_thread_removes_it(mcpctl: Mcpctl, thread_id: str) -> None:
    deleted = ok(mcpctl("delete", "thread", thread_id))
    again = mcpctl("describe", "thread", thread_id)

    assert lines(deleted) == [f"thread/{thread_id} deleted"]
    assert again.exit_code == 4


def test_completion_offers_agents_and_thread_ids(mcpctl: Mcpctl, thread_id: str) -> None:
    assert complete(mcpctl, "bash", "mcpctl get personalities --agent r") == plain("reviewer")
    assert complete(mcpctl, "bash", "mcpctl create agent x --llm l") == plain("local")
    assert complete(mcpctl, "bash", "mcpctl describe thread ") == plain(thread_id)
