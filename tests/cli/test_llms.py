"""`mcpctl create llm`, `get llms` and `describe llm` against a live mcpd, and the YAML round
trip of an Llm."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Mcpctl
from tests.cli.samples import lines, load_yaml, ok


@pytest.fixture
def pool(mcpctl: Mcpctl) -> None:
    ok(mcpctl("create", "secret", "openai", "--from-literal", "key=sk-1"))
    ok(
        mcpctl(
            "create", "llm", "gpt", "--provider", "openai", "--url", "https://api.example/v1",
            "--model", "gpt-4o-mini", "--api-key", "secret:openai/key", "--pool-name", "fast",
            "--tier", "cheap", "--param", "temperature=0.2", "--param", "max_tokens=256",
            "--param", "stop=###",
        )
    )  # fmt: skip
    ok(
        mcpctl(
            "create", "llm", "local", "--provider", "openai", "--url", "http://127.0.0.1:8080/v1",
            "--model", "smollm2", "--pool-name", "fast", "--status", "inactive",
        )
    )  # fmt: skip


def test_create_llm_produces_exactly_the_yaml_form(mcpctl: Mcpctl) -> None:
    ok(mcpctl("create", "secret", "anthropic", "--from-literal", "key=sk-ant"))

    created = load_yaml(
        mcpctl(
            "create", "llm", "claude", "--provider", "anthropic", "--url",
            "https://api.anthropic.com", "--model", "claude-sonnet-4", "--api-key",
            "secret:anthropic/key", "--pool-name", "smart", "--tier", "premium",
            "--param", "temperature=0.7", "--param", "max_tokens=1024", "--param", "stop=[a, b]",
            "-l", "team=ml", "-o", "yaml",
        )
    )  # fmt: skip

    assert created["metadata"]["labels"] == {"team": "ml"}
    assert created["spec"] == {
        "provider": "anthropic",
        "url": "https://api.anthropic.com",
        "model": "claude-sonnet-4",
        "apiKey": {"name": "anthropic", "key": "key"},
        "tier": "premium",
        "poolName": "smart",
        "defaultParams": {"temperature": 0.7, "max_tokens": 1024, "stop": ["a", "b"]},
    }
    assert created["status"] == {"poolKey": "smart"}


def test_create_llm_says_what_it_created(mcpctl: Mcpctl) -> None:
    result = ok(
        mcpctl(
            "create", "llm", "solo", "--provider", "openai", "--url", "http://127.0.0.1:1/v1",
            "--model", "m",
        )
    )  # fmt: skip

    assert lines(result) == ["llm/solo created"]


def test_create_llm_with_a_bad_api_key_or_param_exits_3_naming_the_option(
    mcpctl: Mcpctl,
) -> None:
    base = ["create", "llm", "x", "--provider", "openai", "--url", "http://h/v1", "--model", "m"]

    bad_key = mcpctl(*base, "--api-key", "openai/key")
    bad_param = mcpctl(*base, "--param", "temperature")
    unknown_param = mcpctl(*base, "--param", "temprature=0.1")
    too_hot = mcpctl(*base, "--param", "temperature=5")

    assert bad_key.exit_code == 3
    assert "--api-key 'openai/key': use secret:SECRET/KEY" in bad_key.stderr
    assert bad_param.exit_code == 3
    assert unknown_param.exit_code == 3
    assert "spec.defaultParams.temprature" in unknown_param.stderr
    assert too_hot.exit_code == 3
    assert "spec.defaultParams.temperature" in too_hot.stderr


def test_create_llm_without_a_provider_is_a_usage_error(mcpctl: Mcpctl) -> None:
    result = mcpctl("create", "llm", "x", "--url", "http://h/v1", "--model", "m")

    assert result.exit_code == 2


def test_get_llms_shows_provider_model_pool_and_status(mcpctl: Mcpctl, pool: None) -> None:
    rows = [line.split() for line in lines(ok(mcpctl("get", "llms")))]
    wide = lines(ok(mcpctl("get", "llms", "-o", "wide")))

    assert [row[:5] for row in rows] == [
        ["NAME", "PROVIDER", "MODEL", "POOL", "STATUS"],
        ["gpt", "openai", "gpt-4o-mini", "fast", "active"],
        ["local", "openai", "smollm2", "fast", "inactive"],
    ]
    assert wide[0].split()[5:8] == ["TIER", "URL", "AGE"]
    assert "https://api.example/v1" in wide[1]


def test_get_llm_yaml_and_json_apply_back_unchanged(mcpctl: Mcpctl, pool: None) -> None:
    for args in (["llms"], ["llm", "gpt"]):
        for fmt in ("yaml", "json"):
            exported = ok(mcpctl("get", *args, "-o", fmt)).stdout
            result = ok(mcpctl("apply", "-f", "-", stdin=exported))
            assert all(line.endswith(" unchanged") for line in lines(result)), result.stdout
    stored = load_yaml(mcpctl("get", "llm", "gpt", "-o", "yaml"))
    assert stored["spec"]["defaultParams"] == {
        "temperature": 0.2,
        "max_tokens": 256,
        "stop": ["###"],
    }


def test_describe_llm_shows_its_pool_block(mcpctl: Mcpctl, pool: None) -> None:
    text = ok(mcpctl("describe", "llm", "gpt")).stdout

    block = text[text.index("Pool:") :].splitlines()
    assert block[0].split() == ["Pool:", "fast"]
    assert block[1].split() == [
        "MEMBER", "STATUS", "COOLING", "DOWN", "UNTIL", "FAILURES", "IN", "FLIGHT", "LAST",
        "FAILURE",
    ]  # fmt: skip
    assert block[2].split() == ["gpt", "active", "-", "0", "0", "-"]
    assert block[3].split() == ["local", "inactive", "-", "0", "0", "-"]
    assert "secret/openai  (spec.apiKey)" in text


def test_describe_of_another_kind_has_no_pool_block(mcpctl: Mcpctl) -> None:
    ok(mcpctl("create", "secret", "s", "--from-literal", "k=v"))

    assert "Pool:" not in ok(mcpctl("describe", "secret", "s")).stdout
