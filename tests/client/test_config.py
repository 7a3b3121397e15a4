"""The CLI config file: where it lives, load/save (mode 0600), and resolving the target."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mcpctl.client.config import (
    DEFAULT_SERVER,
    CliConfig,
    Context,
    Target,
    config_path,
    load_config,
    resolve_target,
    save_config,
)
from mcpctl.errors import InvalidInput, NotFound


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No MCPCTL_* from the developer's shell; the config file lives under tmp_path."""
    for var in ("MCPCTL_SERVER", "MCPCTL_TOKEN", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "cfg" / "config.yaml"
    monkeypatch.setenv("MCPCTL_CONFIG", str(path))
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def two_contexts() -> CliConfig:
    return CliConfig(
        contexts=[
            Context("lab", "http://lab:7460", "mcpctl_lab"),
            Context("prod", "https://prod.example.com/mcpd/", "mcpctl_prod"),
        ],
        current="lab",
    )


def test_config_path_is_mcpctl_config_when_set(clean_env: Path) -> None:
    assert config_path() == clean_env


def test_config_path_defaults_to_xdg_config_home_then_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MCPCTL_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_path() == tmp_path / "home" / ".config" / "mcpctl" / "config.yaml"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_path() == tmp_path / "xdg" / "mcpctl" / "config.yaml"


def test_a_missing_config_loads_as_empty(clean_env: Path) -> None:
    assert load_config() == CliConfig()
    assert not clean_env.exists()


def test_save_writes_a_private_file_that_loads_back(clean_env: Path) -> None:
    written = save_config(two_contexts())
    assert written == clean_env
    assert mode(clean_env) == 0o600
    assert mode(clean_env.parent) == 0o700
    assert load_config() == two_contexts()
    assert sorted(os.listdir(clean_env.parent)) == ["config.yaml"]


def test_save_makes_an_existing_readable_config_private(clean_env: Path) -> None:
    clean_env.parent.mkdir()
    clean_env.write_text("contexts: []\n")
    clean_env.chmod(0o644)
    save_config(two_contexts())
    assert mode(clean_env) == 0o600


def test_a_context_without_a_token_is_saved_without_one(clean_env: Path) -> None:
    save_config(CliConfig([Context("anon", "http://h:1")], "anon"))
    assert "token" not in clean_env.read_text()
    assert load_config().contexts == [Context("anon", "http://h:1", None)]


@pytest.mark.parametrize(
    "text",
    [
        "contexts: [unclosed\n",
        "- just\n- a list\n",
        "contexts:\n- name: a\n",
        "contexts: 5\n",
        "contexts:\n- just-a-string\n",
    ],
)
def test_a_malformed_config_is_invalid_input_naming_the_file(clean_env: Path, text: str) -> None:
    clean_env.parent.mkdir()
    clean_env.write_text(text)
    with pytest.raises(InvalidInput) as caught:
        load_config()
    assert str(caught.value).startswith(f"{clean_env}: not a valid mcpctl config (")
    assert caught.value.exit_code == 3


def test_a_config_that_cannot_be_read_is_invalid_input(clean_env: Path) -> None:
    clean_env.mkdir(parents=True)
    with pytest.raises(InvalidInput, match="cannot read the mcpctl config"):
        load_config()


def test_upsert_replaces_a_context_of_the_same_name() -> None:
    config = two_contexts()
    config.upsert(Context("lab", "http://new:1", "t"))
    assert [(c.name, c.server) for c in config.contexts] == [
        ("prod", "https://prod.example.com/mcpd/"),
        ("lab", "http://new:1"),
    ]


def test_get_of_an_unknown_context_lists_the_known_ones() -> None:
    with pytest.raises(NotFound, match=r"context 'dev' not found \(contexts: lab, prod\)"):
        two_contexts().get("dev")


def test_resolve_target_without_config_or_env_is_the_local_default() -> None:
    assert resolve_target() == Target(DEFAULT_SERVER, None)


def test_resolve_target_uses_the_current_context() -> None:
    save_config(two_contexts())
    assert resolve_target() == Target("http://lab:7460", "mcpctl_lab")


def test_resolve_target_uses_a_named_context_without_its_trailing_slash() -> None:
    save_config(two_contexts())
    assert resolve_target("prod") == Target("https://prod.example.com/mcpd", "mcpctl_prod")


def test_resolve_target_of_an_unknown_context_is_not_found() -> None:
    save_config(two_contexts())
    with pytest.raises(NotFound):
        resolve_target("dev")


def test_environment_overrides_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    save_config(two_contexts())
    monkeypatch.setenv("MCPCTL_SERVER", "http://env:1/")
    assert resolve_target("prod") == Target("http://env:1", "mcpctl_prod")
    monkeypatch.setenv("MCPCTL_TOKEN", "mcpctl_env")
    assert resolve_target("prod") == Target("http://env:1", "mcpctl_env")


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPCTL_SERVER", "http://env:1")
    monkeypatch.setenv("MCPCTL_TOKEN", "mcpctl_env")
    assert resolve_target(None, "http://flag:2", "mcpctl_flag") == Target(
        "http://flag:2", "mcpctl_flag"
    )


def test_a_current_context_that_does_not_exist_falls_back_to_the_default(clean_env: Path) -> None:
    save_config(CliConfig([Context("lab", "http://lab:1", "t")], current="gone"))
    assert resolve_target() == Target(DEFAULT_SERVER, None)
