"""`mcpctl get` and `mcpctl describe` against a live mcpd."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import Mcpctl
from tests.cli.samples import STACK, document, lines, load_yaml, ok, server, write
from tests.conftest import LiveMcpd


@pytest.fixture
def stack(mcpctl: Mcpctl, tmp_path: Path) -> Path:
    path = write(tmp_path, "stack.yaml", STACK)
    ok(mcpctl("apply", "-f", str(path)))
    return path


def test_get_prints_a_table_with_a_header_and_one_row_per_object(
    mcpctl: Mcpctl, stack: Path
) -> None:
    result = ok(mcpctl("get", "servers"))
    rows = [line.split() for line in lines(result)]
    assert rows[0] == ["NAME", "RUNTIME", "TRANSPORT", "TEMPLATE", "AGE"]
    assert [r[:4] for r in rows[1:]] == [
        ["clock", "process", "stdio", "<none>"],
        ["time", "process", "stdio", "timekeeper"],
    ]
    assert all(re.fullmatch(r"\d+[smhdy]", r[4]) for r in rows[1:])
    assert result.stderr == ""


def test_get_wide_adds_the_command_and_labels_columns(mcpctl: Mcpctl, stack: Path) -> None:
    result = ok(mcpctl("get", "servers", "-o", "wide"))
    header, clock, time = (line.split() for line in lines(result))
    assert header == [
        "NAME",
        "RUNTIME",
        "TRANSPORT",
        "TEMPLATE",
        "COMMAND",
        "IMAGE",
        "URL",
        "AGE",
        "LABELS",
    ]
    assert (clock[4], clock[-1]) == ("python3", "team=platform")
    assert (time[4], time[-1]) == ("uvx", "team=infra")


def test_get_no_headers_prints_only_the_rows(mcpctl: Mcpctl, stack: Path) -> None:
    result = ok(mcpctl("get", "servers", "--no-headers"))
    assert [line.split()[0] for line in lines(result)] == ["clock", "time"]


def test_get_yaml_of_one_object_is_that_object(mcpctl: Mcpctl, stack: Path) -> None:
    obj = load_yaml(mcpctl("get", "server", "time", "-o", "yaml"))
    assert obj["kind"] == "Server"
    assert obj["metadata"]["name"] == "time"
    assert obj["metadata"]["labels"] == {"team": "infra"}
    assert obj["spec"]["fromTemplate"] == "timekeeper"
    assert obj["status"]["effective"]["command"] == "uvx"


def test_get_json_of_a_kind_is_a_list_of_its_objects(mcpctl: Mcpctl, stack: Path) -> None:
    listing = json.loads(ok(mcpctl("get", "servers", "-o", "json")).stdout)
    assert (listing["apiVersion"], listing["kind"]) == ("mcpctl/v1", "List")
    assert [o["metadata"]["name"] for o in listing["items"]] == ["clock", "time"]


def test_get_secret_masks_values_in_every_format(mcpctl: Mcpctl, stack: Path) -> None:
    as_yaml = load_yaml(mcpctl("get", "secret", "creds", "-o", "yaml"))
    assert as_yaml["spec"]["data"] == {"token": None}
    assert as_yaml["status"]["keys"] == ["token"]
    assert "s3cret" not in ok(mcpctl("get", "secrets", "-o", "json")).stdout
    revealed = load_yaml(mcpctl("get", "secret", "creds", "-o", "yaml", "--show-values"))
    assert revealed["spec"]["data"] == {"token": "s3cret"}


def test_get_name_prints_kind_slash_name(mcpctl: Mcpctl, stack: Path) -> None:
    result = ok(mcpctl("get", "servers,projects", "-o", "name"))
    assert lines(result) == ["server/clock", "server/time", "project/tools"]


def test_get_label_selector_keeps_matching_objects(mcpctl: Mcpctl, stack: Path) -> None:
    def names(*selector: str) -> list[str]:
        return lines(ok(mcpctl("get", "servers", "-o", "name", *selector)))

    assert names("-l", "team=infra") == ["server/time"]
    assert names("--selector", "team!=infra") == ["server/clock"]
    assert names("-l", "team in (infra,platform)") == ["server/clock", "server/time"]
    assert names("-l", "!team") == []


def test_get_label_selector_that_is_malformed_exits_3(mcpctl: Mcpctl, stack: Path) -> None:
    result = mcpctl("get", "servers", "-l", "team=in=fra")
    assert result.exit_code == 3
    assert result.stderr.startswith("error: ")
    assert result.stdout == ""


def test_get_accepts_plural_singular_short_and_kind_names(mcpctl: Mcpctl, stack: Path) -> None:
    expected = ["server/clock", "server/time"]
    for word in ("servers", "server", "srv", "Server", "SERVERS"):
        assert lines(ok(mcpctl("get", word, "-o", "name"))) == expected, word
    assert lines(ok(mcpctl("get", "proj", "-o", "name"))) == ["project/tools"]
    assert lines(ok(mcpctl("get", "tpl", "-o", "name"))) == ["template/timekeeper"]
    assert lines(ok(mcpctl("get", "pr", "-o", "name"))) == ["prompt/greeting"]
    assert lines(ok(mcpctl("get", "sec", "-o", "name"))) == ["secret/creds"]


def test_get_type_slash_name_fetches_objects_of_several_kinds(mcpctl: Mcpctl, stack: Path) -> None:
    result = ok(mcpctl("get", "srv/time", "project/tools", "secret/creds", "-o", "name"))
    assert lines(result) == ["server/time", "project/tools", "secret/creds"]


def test_get_several_names_of_one_kind(mcpctl: Mcpctl, stack: Path) -> None:
    result = ok(mcpctl("get", "servers", "time", "clock", "-o", "name"))
    assert lines(result) == ["server/time", "server/clock"]


def test_get_several_kinds_prints_one_table_per_kind_with_prefixed_names(
    mcpctl: Mcpctl, stack: Path
) -> None:
    result = ok(mcpctl("get", "servers,projects"))
    blocks = result.stdout.split("\n\n")
    assert len(blocks) == 2
    assert blocks[0].splitlines()[0].split()[0] == "NAME"
    assert [line.split()[0] for line in blocks[0].splitlines()[1:]] == [
        "server/clock",
        "server/time",
    ]
    assert [line.split()[0] for line in blocks[1].splitlines()[1:]] == ["project/tools"]


def test_get_all_lists_objects_of_every_kind(mcpctl: Mcpctl, stack: Path) -> None:
    result = ok(mcpctl("get", "all", "-o", "name"))
    assert lines(result) == [
        "secret/creds",
        "template/timekeeper",
        "server/clock",
        "server/time",
        "project/tools",
        "prompt/greeting",
    ]


def test_get_an_object_that_does_not_exist_exits_4(mcpctl: Mcpctl, stack: Path) -> None:
    result = mcpctl("get", "server", "nope")
    assert result.exit_code == 4
    assert result.stderr == "error: server/nope not found\n"
    assert result.stdout == ""
    assert mcpctl("get", "server/nope").exit_code == 4


def test_get_an_unknown_kind_exits_3_listing_the_known_kinds(offline_mcpctl: Mcpctl) -> None:
    result = offline_mcpctl("get", "widgets")
    assert result.exit_code == 3
    assert result.stderr == (
        "error: unknown kind 'widgets'; known kinds: "
        "secrets, templates, servers, llms, projects, agents, prompts, personalities, users, groups, "
        "rbacdefinitions\n"
    )


def test_get_mixing_kind_name_and_type_slash_name_exits_3(offline_mcpctl: Mcpctl) -> None:
    result = offline_mcpctl("get", "servers", "project/tools")
    assert result.exit_code == 3
    assert "either KIND NAME" in result.stderr


def test_get_with_no_objects_says_so_on_stderr_and_exits_0(mcpctl: Mcpctl) -> None:
    result = ok(mcpctl("get", "servers"))
    assert result.stdout == ""
    assert result.stderr == "No resources found.\n"


def test_get_in_small_chunks_follows_continue_tokens_to_the_end(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    names = [f"srv-{i}" for i in range(5)]
    path = write(tmp_path, "many.yaml", "---\n".join(server(n) for n in names))
    ok(mcpctl("apply", "-f", str(path)))

    result = ok(mcpctl("get", "servers", "-o", "name", "--chunk-size", "2"))

    assert lines(result) == [f"server/{n}" for n in names]
    # Five objects in chunks of two: the CLI asked three times, passing the token along.
    metrics = httpx.get(
        f"{live_mcpd.url}/metrics", headers={"Authorization": f"Bearer {live_mcpd.token}"}
    ).text
    assert 'mcpd_http_requests_total{method="GET",route="/api/v1/servers",status="200"} 3.0' in (
        metrics
    )


def test_get_chunk_size_out_of_range_is_a_usage_error(offline_mcpctl: Mcpctl) -> None:
    result = offline_mcpctl("get", "servers", "--chunk-size", "0")
    assert result.exit_code == 2
    assert "--chunk-size" in result.stderr


def test_describe_shows_spec_effective_spec_and_references(mcpctl: Mcpctl, stack: Path) -> None:
    text = ok(mcpctl("describe", "server", "time")).stdout
    assert text.startswith("Name:              time\nKind:              Server\n")
    assert "Labels:            team=infra\n" in text
    assert "Resource version:  1\n" in text
    assert "  fromTemplate: timekeeper\n" in text
    assert (
        "Effective (template applied):\n  description: Time and timezones\n  command: uvx\n" in text
    )
    assert "Used by:\n  project/tools  (spec.servers[0])\n" in text
    assert "Uses:\n" in text
    assert "  secret/creds         (spec.env[1].valueFrom.secretRef)\n" in text
    assert "  template/timekeeper  (spec.fromTemplate)\n" in text


def test_describe_accepts_type_slash_name(mcpctl: Mcpctl, stack: Path) -> None:
    text = ok(mcpctl("describe", "project/tools")).stdout
    assert text.startswith("Name:              tools\nKind:              Project\n")
    assert "Used by:\n  prompt/greeting  (spec.project)\n" in text


def test_describe_a_secret_hides_its_values(mcpctl: Mcpctl, stack: Path) -> None:
    text = ok(mcpctl("describe", "secret", "creds")).stdout
    assert "Data:\n  token: <hidden>\n" in text
    assert "s3cret" not in text


def test_describe_without_a_name_is_a_usage_error(offline_mcpctl: Mcpctl) -> None:
    result = offline_mcpctl("describe", "server")
    assert result.exit_code == 2
    assert "describe KIND NAME" in result.stderr


def test_describe_an_object_that_does_not_exist_exits_4(mcpctl: Mcpctl) -> None:
    result = mcpctl("describe", "prompt", "ghost")
    assert result.exit_code == 4
    assert result.stderr == "error: prompt/ghost not found\n"


def test_get_output_of_a_prompt_shows_its_project_and_priority(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "p.yaml",
        document("Prompt", "loose", {"content": "hi", "priority": 9, "tags": ["a", "b"]}),
    )
    ok(mcpctl("apply", "-f", str(path)))
    header, row = (line.split() for line in lines(ok(mcpctl("get", "prompts", "-o", "wide"))))
    assert header == ["NAME", "PROJECT", "AGENT", "PRIORITY", "TAGS", "AGE", "LABELS"]
    assert row[:5] == ["loose", "<none>", "<none>", "9", "a,b"]


def test_describe_shows_a_project_status_warning(
    mcpctl: Mcpctl, stack: Path, tmp_path: Path
) -> None:
    text = (
        server("extra")
        + "---\n"
        + document("Project", "plain", {"servers": ["time", "extra"], "toolPrefix": "never"})
    )
    ok(mcpctl("apply", "-f", str(write(tmp_path, "plain.yaml", text))))
    shown = ok(mcpctl("describe", "project", "plain")).stdout
    assert "Warning:           toolPrefix: never with 2 servers" in shown
