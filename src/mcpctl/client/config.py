"""The CLI config (contexts: server URL + token), shared by mcpctl and mcplocal.

File: ``$MCPCTL_CONFIG`` or ``$XDG_CONFIG_HOME/mcpctl/config.yaml`` (``~/.config/...``),
always written with mode 0600. ``MCPCTL_SERVER`` and ``MCPCTL_TOKEN`` override the context.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcpctl.errors import InvalidInput, NotFound

DEFAULT_SERVER = "http://127.0.0.1:7460"


def config_path() -> Path:
    if explicit := os.environ.get("MCPCTL_CONFIG"):
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mcpctl" / "config.yaml"


@dataclass
class Context:
    name: str
    server: str
    token: str | None = None


@dataclass
class CliConfig:
    contexts: list[Context] = field(default_factory=list)
    current: str | None = None

    def get(self, name: str) -> Context:
        """Raises: NotFound, listing the contexts there are."""
        for ctx in self.contexts:
            if ctx.name == name:
                return ctx
        known = ", ".join(c.name for c in self.contexts) or "none"
        raise NotFound(f"context {name!r} not found (contexts: {known})")

    def upsert(self, ctx: Context) -> None:
        self.contexts = [c for c in self.contexts if c.name != ctx.name] + [ctx]


def load_config(path: Path | None = None) -> CliConfig:
    """Raises: InvalidInput for a file that is not a config."""
    import yaml

    path = path or config_path()
    if not path.exists():
        return CliConfig()
    try:
        raw: Any = yaml.safe_load(path.read_text()) or {}
        contexts = [
            Context(name=str(c["name"]), server=str(c["server"]), token=c.get("token"))
            for c in raw.get("contexts", [])
        ]
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the mcpctl config ({exc.strerror})") from exc
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"{path}: not a valid mcpctl config ({exc})") from exc
    return CliConfig(contexts=contexts, current=raw.get("current-context"))


def save_config(config: CliConfig, path: Path | None = None) -> Path:
    import yaml

    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {
        "current-context": config.current,
        "contexts": [
            {"name": c.name, "server": c.server, **({"token": c.token} if c.token else {})}
            for c in config.contexts
        ],
    }
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class Target:
    server: str
    token: str | None


def resolve_target(
    context: str | None = None, server: str | None = None, token: str | None = None
) -> Target:
    """Where to send requests: flags, then env, then the (named or current) context.

    Raises:
        NotFound: for a ``context`` that is not in the config.
    """
    server = server or os.environ.get("MCPCTL_SERVER")
    token = token or os.environ.get("MCPCTL_TOKEN")
    config = load_config()
    ctx: Context | None = None
    if context:
        ctx = config.get(context)
    elif config.current:
        ctx = next((c for c in config.contexts if c.name == config.current), None)
    return Target(
        server=(server or (ctx.server if ctx else None) or DEFAULT_SERVER).rstrip("/"),
        token=token or (ctx.token if ctx else None),
    )
