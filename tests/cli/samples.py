"""Manifests the CLI tests apply, and helpers to read what the CLI printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import Result

# Every dependency comes after its user, so only dependency ordering makes this apply.
STACK = """\
apiVersion: mcpctl/v1
kind: Prompt
metadata:
  name: greeting
spec:
  project: tools
  content: Say hello before using a tool.
---
apiVersion: mcpctl/v1
kind: Project
metadata:
  name: tools
  labels:
    team: infra
spec:
  description: Everyday tools
  servers: [time, clock]
---
apiVersion: mcpctl/v1
kind: Server
metadata:
  name: time
  labels:
    team: infra
spec:
  fromTemplate: timekeeper
  env:
    - name: LOCAL_TIMEZONE
      value: Europe/Berlin
    - name: API_KEY
      valueFrom:
        secretRef: {name: creds, key: token}
---
apiVersion: mcpctl/v1
kind: Server
metadata:
  name: clock
  labels:
    team: platform
spec:
  command: python3
  args: ["-m", "clock"]
---
apiVersion: mcpctl/v1
kind: Template
metadata:
  name: timekeeper
spec:
  description: Time and timezones
  command: uvx
  args: [mcp-server-time, "--local-timezone=$(LOCAL_TIMEZONE)"]
  parameters:
    - name: LOCAL_TIMEZONE
      default: ""
---
apiVersion: mcpctl/v1
kind: Secret
metadata:
  name: creds
spec:
  data:
    token: s3cret
"""

STACK_REFS = [
    "secret/creds",
    "template/timekeeper",
    "server/time",
    "server/clock",
    "project/tools",
    "prompt/greeting",
]


def server(name: str, command: str = "python3", labels: dict[str, str] | None = None) -> str:
    """One plain Server document."""
    return document("Server", name, {"command": command}, labels)


def document(
    kind: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None
) -> str:
    """One document of any kind, as YAML."""
    return yaml.safe_dump(
        {
            "apiVersion": "mcpctl/v1",
            "kind": kind,
            "metadata": {"name": name, "labels": labels or {}},
            "spec": spec,
        },
        sort_keys=False,
    )


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def lines(result: Result) -> list[str]:
    return result.stdout.splitlines()


def ok(result: Result) -> Result:
    """Assert a zero exit code, showing both streams when it is not."""
    assert result.exit_code == 0, (
        f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        + (f"\nexception: {result.exception!r}" if result.exception else "")
    )
    return result


def load_yaml(result: Result) -> Any:
    return yaml.safe_load(ok(result).stdout)
