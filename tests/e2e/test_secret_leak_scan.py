"""A leak scan (issue 3): secret values, passwords, passphrases and tokens never leave mcpd
except where asked for.

One real `mcpd serve --log-level debug` process (so uvicorn's access log, SQLAlchemy's SQL log
and any traceback land in its log file) on SQLite or the real PostgreSQL. Secrets with unique
marker values are created through the real CLI, and every command and route that shows or
moves objects without asking to reveal is run against them, error paths included. Then every
marker is searched for (also hex and base64 encoded) in everything those produced and
everything mcpd keeps: CLI output, HTTP bodies and headers, the mcpd log, the audit table, the
backup files, the CLI config files, the editor's view, every file of the data dir (the SQLite
database with its -wal) and every row of every table. Positive controls show the search finds
what it looks for, so the test cannot pass by looking in the wrong place.

User passwords (write-only ``spec.password``, given on stdin, in YAML and over REST) go through
users, groups, RBAC, describe's permission tables, impersonation, audit and backup/restore; the
controls log in with each and verify the backup's argon2 hashes against them. Two instances
run (`restart server`) whose servers print a secret of their env to stderr, one of them failing
to start: logs, instance status and last errors must show it only as ``<hidden>``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from argon2 import PasswordHasher
from click.testing import Result

from mcpctl.mcpd.settings import Settings
from mcpctl.resources.kinds import KINDS
from tests.cli.conftest import Mcpctl, base_env
from tests.conftest import Database
from tests.e2e.test_mcpd_subprocess import (
    clean_env,
    free_port,
    healthy,
    started,
    stop_with_sigint,
    wait_until,
)
from tests.mcpd.instances.running import fixture_args
from tests.mcpd.running import raw_rows

pytestmark = pytest.mark.slow

# `mcpd serve`, with SQLAlchemy's statement log on (SQL and parameters: it keeps its own loggers
# at WARNING even under --log-level debug), so every value sent to the database is in the log.
SERVE_LOGGING_SQL = (
    "import logging; logging.getLogger('sqlalchemy.engine').setLevel(logging.INFO); "
    "from mcpctl.mcpd.cli import main; main()"
)
TABLES = ("objects", "object_labels", "object_refs", "users", "tokens", "audit_events")


def _marker(what: str) -> str:
    return f"leak-{what}-{uuid.uuid4().hex}"


def encodings(needle: str) -> list[bytes]:
    """``needle`` as bytes, in hex, and in base64 (standard and URL-safe) at each of the three
    alignments it can have inside a longer encoded string."""
    raw = needle.encode()
    found = [raw, raw.hex().encode(), raw.hex().upper().encode()]
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * pad + raw)
            # Drop the groups that also depend on the bytes around the needle.
            found.append(encoded[4 if pad else 0 : -4])
    return found


def find(needles: Iterable[str], haystack: str | bytes) -> list[str]:
    """The needles that occur in ``haystack``, plainly or encoded."""
    data = haystack.encode() if isinstance(haystack, str) else haystack
    return [n for n in needles if any(e in data for e in encodings(n))]


@dataclass
class Evidence:
    """Everything collected for the scan, by where it came from."""

    items: dict[str, bytes] = field(default_factory=dict)

    def add(self, where: str, content: str | bytes) -> None:
        data = content.encode() if isinstance(content, str) else content
        key = where
        n = 1
        while key in self.items:
            n += 1
            key = f"{where} #{n}"
        self.items[key] = data

    def leaks(self, needles: Iterable[str]) -> dict[str, list[str]]:
        needles = list(needles)
        return {where: hit for where, data in self.items.items() if (hit := find(needles, data))}


@dataclass
class Run:
    """The CLI (in process, against the mcpd subprocess), recording each call's output."""

    cli: Mcpctl
    evidence: Evidence

    def __call__(
        self,
        *args: str,
        code: int = 0,
        stdin: str | None = None,
        env: Mapping[str, str | None] | None = None,
        scan: bool = True,
    ) -> Result:
        result = self.cli(*args, stdin=stdin, env=env)
        assert result.exit_code == code, (args, result.exit_code, result.output, result.exception)
        if scan:
            self.evidence.add(f"mcpctl {' '.join(args)}: stdout", result.stdout)
            self.evidence.add(f"mcpctl {' '.join(args)}: stderr", result.stderr)
        return result


@dataclass
class Http:
    """Direct REST calls, recording status line, headers and body of each response."""

    client: httpx.Client
    evidence: Evidence

    def __call__(self, method: str, path: str, code: int = 200, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, path, **kwargs)
        assert response.status_code == code, (method, path, response.status_code, response.text)
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
        self.evidence.add(f"{method} {path}: headers", headers)
        self.evidence.add(f"{method} {path}: body", response.content)
        return response


@dataclass(frozen=True)
class Markers:
    creds_token: str = field(default_factory=lambda: _marker("creds-token"))
    creds_user: str = field(default_factory=lambda: _marker("creds-user"))
    gh_token: str = field(default_factory=lambda: _marker("gh-token"))
    multiline: str = field(default_factory=lambda: _marker("pem"))
    new_value: str = field(default_factory=lambda: _marker("new-value"))  # diff/dry-run only
    fresh_value: str = field(default_factory=lambda: _marker("fresh"))  # never stored
    literal: str = field(default_factory=lambda: _marker("literal"))  # refused literal
    bad_input: str = field(default_factory=lambda: _marker("bad-input"))  # in 422 bodies
    password: str = field(default_factory=lambda: _marker("password"))
    new_password: str = field(default_factory=lambda: _marker("new-password"))
    wrong_password: str = field(default_factory=lambda: _marker("wrong-password"))
    passphrase: str = field(default_factory=lambda: _marker("passphrase"))
    # User passwords (write-only spec.password): given on stdin, in YAML, over REST.
    stdin_password: str = field(default_factory=lambda: _marker("stdin-password"))
    yaml_password: str = field(default_factory=lambda: _marker("yaml-password"))
    yaml_new_password: str = field(default_factory=lambda: _marker("yaml-new-password"))
    rest_password: str = field(default_factory=lambda: _marker("rest-password"))
    dry_password: str = field(default_factory=lambda: _marker("dry-password"))  # never stored
    bad_password: str = field(default_factory=lambda: _marker("bad-password"))  # in 422s
    as_password: str = field(default_factory=lambda: _marker("as-password"))  # refused (--as)

    def secret_values(self) -> list[str]:
        return [
            self.creds_token,
            self.creds_user,
            self.gh_token,
            self.multiline,
            self.new_value,
            self.fresh_value,
            self.literal,
            self.bad_input,
        ]

    def user_passwords(self) -> list[str]:
        return [
            self.stdin_password,
            self.yaml_password,
            self.yaml_new_password,
            self.rest_password,
            self.dry_password,
            self.bad_password,
            self.as_password,
        ]

    def credentials(self) -> list[str]:
        return [
            self.password,
            self.new_password,
            self.wrong_password,
            self.passphrase,
            *self.user_passwords(),
        ]


def stack(m: Markers) -> str:
    pem = f"-----BEGIN KEY-----\n{m.multiline}\n-----END KEY-----\n"
    return f"""\
apiVersion: mcpctl/v1
kind: Secret
metadata: {{name: creds, labels: {{team: infra}}}}
spec:
  data:
    token: {m.creds_token}
    user: {m.creds_user}
    pem: {json.dumps(pem)}
---
apiVersion: mcpctl/v1
kind: Template
metadata: {{name: vault}}
spec:
  command: uvx
  args: [vault-mcp, "--token=$(API_TOKEN)"]
  parameters:
    - {{name: API_TOKEN, required: true, secret: true}}
---
apiVersion: mcpctl/v1
kind: Server
metadata: {{name: time, labels: {{team: infra}}}}
spec:
  command: uvx
  args: [mcp-server-time]
  env:
    - name: TOKEN
      valueFrom: {{secretRef: {{name: creds, key: token}}}}
    - name: CERT
      valueFrom: {{secretRef: {{name: creds, key: pem}}}}
---
apiVersion: mcpctl/v1
kind: Server
metadata: {{name: vaulted}}
spec:
  fromTemplate: vault
  env:
    - name: API_TOKEN
      valueFrom: {{secretRef: {{name: creds, key: user}}}}
---
apiVersion: mcpctl/v1
kind: Project
metadata: {{name: tools}}
spec:
  description: Everyday tools
  servers: [time, vaulted]
---
apiVersion: mcpctl/v1
kind: Prompt
metadata: {{name: hello}}
spec:
  project: tools
  content: Say hello.
"""


def changes(m: Markers) -> str:
    """What diff and apply --dry-run see: a new value for a stored key, a new secret."""
    return f"""\
apiVersion: mcpctl/v1
kind: Secret
metadata: {{name: creds, labels: {{team: infra}}}}
spec:
  data: {{token: {m.new_value}, user: null, pem: null}}
---
apiVersion: mcpctl/v1
kind: Secret
metadata: {{name: fresh}}
spec:
  data: {{key: {m.fresh_value}}}
---
apiVersion: mcpctl/v1
kind: Server
metadata: {{name: time, labels: {{team: infra, tier: "1"}}}}
spec:
  command: uvx
  args: [mcp-server-time]
  env:
    - name: TOKEN
      valueFrom: {{secretRef: {{name: creds, key: token}}}}
    - name: CERT
      valueFrom: {{secretRef: {{name: creds, key: pem}}}}
"""


def user_manifest(password: str | list[str]) -> str:
    """dave, a User with a password in YAML, and a Group naming him."""
    return f"""\
apiVersion: mcpctl/v1
kind: User
metadata: {{name: dave, labels: {{team: infra}}}}
spec:
  displayName: Dave
  password: {json.dumps(password)}
---
apiVersion: mcpctl/v1
kind: Group
metadata: {{name: ops}}
spec:
  members: [dave]
"""


# The editor: records what it was shown, then adds a label.
EDITOR = """\
import sys, yaml
record, path = sys.argv[1], sys.argv[2]
text = open(path).read()
with open(record, "a") as fh:
    fh.write(text)
doc = yaml.safe_load(text)
doc["metadata"].setdefault("labels", {})["edited"] = "yes"
with open(path, "w") as fh:
    yaml.safe_dump(doc, fh)
"""


def wait_logged(client: httpx.Client, server: str, text: str) -> None:
    """Poll the server's log until it holds ``text`` (bounded against hanging, nothing timed)."""
    pause = threading.Event()
    for _ in range(600):
        if text in client.get(f"/api/v1/servers/{server}/logs").text:
            return
        pause.wait(0.05)
    pytest.fail(f"{text!r} never reached the log of server/{server}")


def complete(run: Run, words: str) -> str:
    index = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {"_MCPCTL_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(index)}
    return run(env=env).stdout


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def all_rows(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    return {t: await raw_rows(settings, f"SELECT * FROM {t}") for t in TABLES}


def rows_as_bytes(rows: list[tuple[Any, ...]]) -> bytes:
    """Every value of the rows: bytes as they are, the rest as text."""
    parts = [v if isinstance(v, bytes | memoryview) else repr(v).encode() for r in rows for v in r]
    return b"\n".join(bytes(p) for p in parts)


def exercise(run: Run, http: Http, m: Markers, tmp: Path) -> dict[str, str]:
    """Every command and route that shows or moves objects without asking to reveal.
    Returns outputs the positive controls need."""
    seen: dict[str, str] = {}
    (tmp / "stack.yaml").write_text(stack(m))
    (tmp / "changes.yaml").write_text(changes(m))
    assert "secret/creds created" in run("apply", "-f", str(tmp / "stack.yaml")).stdout
    run("create", "secret", "gh", "--from-literal", f"token={m.gh_token}", "-l", "team=dev")
    run("create", "server", "github", "--command", "npx", "--env", "GH=secret:gh/token")
    run(
        "create",
        "server",
        "github2",
        "--command",
        "npx",
        "--env",
        "GH=secret:gh/token",
        "-o",
        "yaml",
    )
    run("create", "server", "v2", "--from-template", "vault", "--env", "API_TOKEN=secret:gh/token")
    run(
        "create",
        "secret",
        "gh-copy",
        "--from-literal",
        f"t={m.fresh_value}",
        "--dry-run",
        "-o",
        "json",
    )
    run("create", "project", "dev", "--server", "github", "-o", "json")
    seen |= exercise_users(run, http, m, tmp)
    seen |= exercise_instances(run, http)

    kinds = [info.plural for info in KINDS]
    for fmt in ("table", "wide", "yaml", "json", "name"):
        run("get", "all", "-o", fmt)
        run("get", ",".join(kinds), "-o", fmt)
        run("get", "secret", "creds", "gh", "-o", fmt)
        run("get", "secrets", "-l", "team=infra", "-o", fmt)
    run("get", "secrets", "--chunk-size", "1", "-o", "json")
    seen["export"] = run("get", "all", "-o", "yaml").stdout
    for ref in (
        "secret/creds",
        "secret/gh",
        "template/vault",
        "server/time",
        "server/vaulted",
        "server/github",
        "project/tools",
        "prompt/hello",
        "user/alice",
        "user/dave",
        "group/devs",
        "rbacdefinition/devs-read",
    ):
        run("describe", ref)

    diff = run("diff", "-f", str(tmp / "changes.yaml"), code=1).stdout
    assert "fresh" in diff
    assert "tier" in diff
    dry = run("apply", "--dry-run", "-f", str(tmp / "changes.yaml")).stdout
    assert "secret/fresh created (dry run)" in dry, dry
    (tmp / "export.yaml").write_text(seen["export"])
    run("apply", "-f", str(tmp / "export.yaml"))
    run("diff", "-f", str(tmp / "export.yaml"))

    editor = tmp / "editor.py"
    editor.write_text(EDITOR)
    editor_env = {"MCPCTL_EDITOR": f"{sys.executable} {editor} {tmp / 'editor-saw.yaml'}"}
    for ref in ("secret/creds", "server/time", "template/vault", "user/alice", "user/dave"):
        run("edit", ref, env=editor_env)

    for ref in ("secret/creds", "secret/gh", "template/vault", "server/time"):
        assert "in use" in run("delete", ref, code=5).stderr
    run("delete", "secret/creds", "--dry-run", code=5)
    run("delete", "prompt/hello", "--dry-run")

    # 422s that name secret references, with marker values in what is refused.
    bad = run("create", "server", "bad1", "--command", "x", "--env", "T=secret:creds/nokey", code=3)
    assert "creds" in bad.stderr
    assert "nokey" in bad.stderr
    bad = run("create", "server", "bad2", "--command", "x", "--env", "T=secret:nosuch/a", code=3)
    assert "nosuch" in bad.stderr
    literal = f"API_TOKEN={m.literal}"
    bad = run("create", "server", "bad3", "--from-template", "vault", "--env", literal, code=3)
    assert "API_TOKEN" in bad.stderr
    (tmp / "bad.yaml").write_text(
        f"apiVersion: mcpctl/v1\nkind: Secret\nmetadata: {{name: bad}}\n"
        f"spec: {{data: {{'bad key!': {m.bad_input}}}}}\n"
    )
    run("apply", "-f", str(tmp / "bad.yaml"), code=3)
    (tmp / "bad2.yaml").write_text(
        f"apiVersion: mcpctl/v1\nkind: Secret\nmetadata: {{name: bad}}\n"
        f"spec: {{data: {{k: {m.bad_input}}}, extra: {m.bad_input}}}\n"
    )
    run("apply", "-f", str(tmp / "bad2.yaml"), code=3)
    (tmp / "bad3.yaml").write_text(
        "apiVersion: mcpctl/v1\nkind: Secret\nmetadata: {name: creds}\n"
        f"spec: {{data: {{token: {m.bad_input}, never-stored: null}}}}\n"
    )
    run("apply", "-f", str(tmp / "bad3.yaml"), code=3)

    seen["audit"] = run("get", "audit", "-o", "json").stdout
    run("get", "audit", "-o", "yaml", "--kind", "Secret")
    seen["user audit"] = run("get", "audit", "-o", "json", "--kind", "User").stdout
    run("get", "audit", "-o", "yaml", "--user", "alice")
    run("get", "audit")
    run("get", "tokens", "-o", "json")
    run("get", "tokens", "--all", "-o", "json")
    run("get", "tokens", "--all")
    run("auth", "whoami")

    passphrase = tmp / "passphrase"
    passphrase.write_text(m.passphrase + "\n")
    for name in ("backup.yaml", "backup.json"):
        run("backup", "-o", str(tmp / name), "--passphrase-file", str(passphrase))
    run(
        "restore", "-f", str(tmp / "backup.yaml"), "--passphrase-file", str(passphrase), "--dry-run"
    )
    run(
        "restore",
        "-f",
        str(tmp / "backup.json"),
        "--passphrase-file",
        str(passphrase),
        "--dry-run",
        "--conflict",
        "overwrite",
    )
    # A real restore over the live data, users (with their hashes) included.
    run(
        "restore",
        "-f",
        str(tmp / "backup.yaml"),
        "--passphrase-file",
        str(passphrase),
        "--conflict",
        "overwrite",
    )

    seen["completion"] = complete(run, "mcpctl get secret ")
    complete(run, "mcpctl describe secret/")
    complete(run, "mcpctl edit server ")
    complete(run, "mcpctl create server x --from-template ")
    complete(run, "mcpctl describe user ")
    complete(run, "mcpctl --as ")
    run("completion", "bash")

    exercise_rest(http, m)
    return seen


def exercise_users(run: Run, http: Http, m: Markers, tmp: Path) -> dict[str, str]:
    """Users with passwords (stdin, YAML, REST), groups, RBAC, impersonation."""
    seen: dict[str, str] = {}
    created = run("create", "user", "alice", "--password-stdin", stdin=m.stdin_password + "\n")
    assert created.stdout == "user/alice created\n", created.stdout
    dry = ("--dry-run", "-o", "json")
    run(
        "create",
        "user",
        "bob",
        "--password-stdin",
        "--display-name",
        "Bob",
        *dry,
        stdin=m.dry_password,
    )
    run("create", "user", "alice", "--password-stdin", stdin=m.dry_password, code=5)
    (tmp / "users.yaml").write_text(user_manifest(m.yaml_password))
    (tmp / "users-changed.yaml").write_text(user_manifest(m.yaml_new_password))
    (tmp / "users-bad.yaml").write_text(user_manifest([m.bad_password]))
    assert "user/dave created" in run("apply", "-f", str(tmp / "users.yaml")).stdout
    assert "user/dave unchanged" in run("apply", "-f", str(tmp / "users.yaml")).stdout
    run("diff", "-f", str(tmp / "users.yaml"))
    run("diff", "-f", str(tmp / "users-changed.yaml"))  # a password is never diffed
    assert "configured" in run("apply", "--dry-run", "-f", str(tmp / "users-changed.yaml")).stdout
    assert "user/dave configured" in run("apply", "-f", str(tmp / "users-changed.yaml")).stdout
    run("apply", "-f", str(tmp / "users-bad.yaml"), code=3)
    seen["written"] = "".join(
        (tmp / f).read_text() for f in ("users.yaml", "users-changed.yaml", "users-bad.yaml")
    )

    run("create", "group", "devs", "--member", "alice", "--member", "dave", "-o", "yaml")
    run("create", "rbac", "devs-read", "--subject", "group:devs", "--binding", "view:*")
    binding = ("--binding", "edit:server:github", "--operation", "logs")
    run("create", "rbac", "alice-github", "--subject", "user:alice", *binding, "-o", "json")
    run("create", "rbac", "dry", "--subject", "user:dave", "--binding", "view:*", *dry)

    for fmt in ("table", "wide", "yaml", "json", "name"):
        run("get", "users", "-o", fmt)
        run("get", "groups,rbacdefinitions", "-o", fmt)
    run("get", "user", "alice", "dave", "-o", "yaml")
    run("get", "users", "-l", "team=infra", "-o", "json")
    run("describe", "user", "admin")
    seen["describe alice"] = run("describe", "user", "alice").stdout
    run("describe", "group", "ops")

    seen["whoami as"] = run("--as", "alice", "auth", "whoami").stdout
    run("--as", "alice", "auth", "can-i", "edit", "server", "github")
    run("--as", "alice", "auth", "can-i", "delete", "users", code=1)
    run("--as", "alice", "get", "users", "-o", "yaml")
    run("--as", "alice", "describe", "user", "dave")
    run("--as", "alice", "get", "tokens", "-o", "json")
    run("--as", "alice", "create", "server", "web", "--command", "uvx", code=6)
    run("--as", "alice", "get", "audit", code=6)
    change = f"{m.stdin_password}\n{m.as_password}\n"
    run("--as", "alice", "auth", "change-password", "--password-stdin", stdin=change, code=6)
    run("--as", "nobody", "get", "servers", code=6)
    run("--as", "alice", "login", "--user", "alice", "--password-stdin", stdin=change, code=2)

    assert run("disable", "user", "dave").stdout == "user/dave disabled\n"
    run("--as", "dave", "get", "servers", code=6)
    run("disable", "user", "dave")
    assert run("enable", "user", "dave").stdout == "user/dave enabled\n"
    run("disable", "user", "admin", code=5)
    return seen


def exercise_instances(run: Run, http: Http) -> dict[str, str]:
    """A running server whose env holds a secret and which prints it (its log is scrubbed), one
    printing a multi-line secret (scrubbed line by line), and one that prints it and fails to
    start (its last error is scrubbed)."""
    seen: dict[str, str] = {}
    env = ("--env", "TOKEN=secret:creds/token", "--env", "GH=secret:gh/token")
    cert = ("--env", "CERT=secret:creds/pem")
    for name, argv in (
        ("echo", fixture_args("--say", "token=$(TOKEN)")),
        ("crashy", fixture_args("--say", "failing with $(GH)", "--crash-at-start", "3")),
        ("pem", fixture_args("--say", "cert=$(CERT)")),
    ):
        args = [f"--arg={a}" for a in argv[1:]]
        run("create", "server", name, "--command", argv[0], *env, *args, *cert)
    run("restart", "server", "echo")
    run("restart", "server", "pem")
    run("restart", "server", "crashy", code=7)
    # stderr is read apart from the MCP answers: wait for the scrubbed lines to be logged.
    wait_logged(http.client, "echo", "token=<hidden>")
    wait_logged(http.client, "crashy", "failing with <hidden>")
    wait_logged(http.client, "pem", "cert=<hidden>")
    for fmt in ("table", "wide", "yaml", "json", "name"):
        run("get", "instances", "-o", fmt)
    run("describe", "instance", "echo")
    run("describe", "instance", "crashy")
    seen["logs"] = run("logs", "server", "echo").stdout
    run("logs", "server", "echo", "--tail", "5", "--timestamps")
    seen["crash logs"] = run("logs", "server", "crashy").stdout
    seen["pem logs"] = run("logs", "server", "pem").stdout
    http("GET", "/api/v1/instances")
    http("GET", "/api/v1/instances/echo")
    http("GET", "/api/v1/instances/crashy")
    http("GET", "/api/v1/servers/echo/logs")
    http("GET", "/api/v1/servers/crashy/logs", params={"tail": 10})
    return seen


def exercise_user_rest(http: Http, m: Markers) -> None:
    def user(name: str, password: Any) -> dict[str, Any]:
        spec = {"displayName": name.title(), "password": password}
        return {"apiVersion": "mcpctl/v1", "kind": "User", "metadata": {"name": name}, "spec": spec}

    http("POST", "/api/v1/users", json=user("erin", m.rest_password), code=201)
    http(
        "POST",
        "/api/v1/users",
        json=user("frank", m.dry_password),
        params={"dryRun": "true"},
        code=201,
    )
    http("PUT", "/api/v1/users/erin", json=user("erin", m.dry_password), params={"dryRun": "true"})
    http("PUT", "/api/v1/users/erin", json=user("erin", m.rest_password))
    http(
        "POST",
        "/api/v1/apply",
        params={"dryRun": "true"},
        json={"items": [user("erin", m.dry_password)]},
    )
    http("PUT", "/api/v1/users/erin", json=user("erin", [m.bad_password]), code=422)
    http("PUT", "/api/v1/users/erin", json=user("erin", {"v": m.bad_password}), code=422)
    http("PUT", "/api/v1/users/erin", json=user("erin", m.bad_password[:5]), code=422)
    http("POST", "/api/v1/apply", json={"items": [user("erin", [m.bad_password])]})
    http("GET", "/api/v1/users/erin")
    http("GET", "/api/v1/users/alice/permissions")
    http("GET", "/api/v1/users/dave/permissions")
    http("GET", "/api/v1/users/admin/permissions")
    http("GET", "/api/v1/groups/devs/permissions")
    http("GET", "/api/v1/users/nobody/permissions", code=404)
    http("GET", "/api/v1/groups/nobody/permissions", code=404)
    alice = {"Impersonate-User": "alice"}
    http("GET", "/api/v1/auth/whoami", headers=alice)
    http("GET", "/api/v1/users", headers=alice)
    http("GET", "/api/v1/users/erin/permissions", headers=alice)
    http("GET", "/api/v1/auditevents", headers=alice, code=403)
    login = {"user": "alice", "password": m.stdin_password}
    http("POST", "/api/v1/auth/login", json=login, headers=alice, code=403)
    http("GET", "/api/v1/auth/whoami", headers={"Impersonate-User": "nobody"}, code=403)
    http("GET", "/api/v1/auth/whoami", headers={"Impersonate-User": ""}, code=422)


def exercise_rest(http: Http, m: Markers) -> None:
    exercise_user_rest(http, m)
    for info in KINDS:
        base = f"/api/v1/{info.plural}"
        items = http("GET", base).json()["items"]
        http("GET", base, params={"limit": 1})
        for obj in items:
            name = obj["metadata"]["name"]
            http("GET", f"{base}/{name}")
            http("GET", f"{base}/{name}/usage")
    http("GET", "/api/v1/secrets/nope", code=404)
    http("GET", "/api/v1/secrets/creds", params={"showValues": "false"})
    secret = {
        "apiVersion": "mcpctl/v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "labels": {"team": "infra"}},
        "spec": {"data": {"token": m.new_value, "user": None, "pem": None}},
    }
    fresh = {**secret, "metadata": {"name": "fresh"}, "spec": {"data": {"k": m.fresh_value}}}
    http("POST", "/api/v1/apply", params={"dryRun": "true"}, json={"items": [secret, fresh]})
    http("PUT", "/api/v1/secrets/creds", params={"dryRun": "true"}, json=secret)
    http("POST", "/api/v1/secrets", params={"dryRun": "true"}, json=fresh, code=201)
    http("PUT", "/api/v1/secrets/fresh", params={"dryRun": "true"}, json=fresh, code=201)
    wrong_type = {**fresh, "spec": {"data": {"k": [m.bad_input], "j": {"x": m.bad_input}}}}
    http("PUT", "/api/v1/secrets/fresh", json=wrong_type, code=422)
    extra = {**fresh, "spec": {"data": {"k": "v"}, "extra": m.bad_input}}
    http("PUT", "/api/v1/secrets/fresh", json=extra, code=422)
    http("POST", "/api/v1/apply", json={"items": [wrong_type, extra]})
    http("PUT", "/api/v1/secrets/fresh", content=f'{{"spec": "{m.bad_input}', code=422)
    http("DELETE", "/api/v1/secrets/creds", params={"dryRun": "true"}, code=409)
    http("GET", "/metrics")
    http("GET", "/openapi.json")
    http("GET", "/healthz")
    http("GET", "/api/v1/auth/whoami")
    http("GET", "/api/v1/tokens", params={"all": "true"})
    http("GET", "/api/v1/auditevents")
    login = {"user": "admin", "password": m.wrong_password}
    http("POST", "/api/v1/auth/login", json=login, code=401, headers={"Authorization": ""})
    bad_login = {"user": "admin", "password": [m.wrong_password], "extra": m.wrong_password}
    http("POST", "/api/v1/auth/login", json=bad_login, code=422, headers={"Authorization": ""})


def password_session(cli: Mcpctl, evidence: Evidence, m: Markers, url: str) -> str:
    """Log in with the admin password, change it, log in with the new one, log out.
    Returns the token the first login got."""
    run = Run(cli, evidence)
    run("login", "--server", url, "--user", "admin", "--password-stdin", stdin=m.password + "\n")
    token: str = yaml.safe_load(cli.config.read_text())["contexts"][0]["token"]
    run("auth", "whoami")
    run(
        "auth",
        "change-password",
        "--password-stdin",
        stdin=f"{m.wrong_password}\n{m.new_password}\n",
        code=6,
    )
    run("auth", "change-password", "--password-stdin", stdin=f"{m.password}\n{m.new_password}\n")
    run(
        "login",
        "--server",
        url,
        "--user",
        "admin",
        "--password-stdin",
        stdin=m.password + "\n",
        code=6,
    )
    run("login", "--server", url, "--user", "admin", "--password-stdin", stdin=m.new_password)
    run("config", "get-contexts")
    run("config", "current-context")
    run("get", "tokens", "-o", "json")
    run("logout")
    return token


def user_sessions(cli: Mcpctl, evidence: Evidence, m: Markers, url: str) -> None:
    """Log in as the users the test made, each with the password it gave them (the positive
    control that those passwords went in), and as a disabled-then-enabled user."""
    run = Run(cli, evidence)
    login = ("login", "--server", url, "--user")
    run(*login, "alice", "--password-stdin", stdin=m.stdin_password + "\n")
    assert run("auth", "whoami").stdout.startswith("alice")
    run("auth", "can-i", "edit", "server", "github")
    run("describe", "user", "alice")
    run(*login, "dave", "--password-stdin", stdin=m.yaml_password + "\n", code=6)
    run(*login, "dave", "--password-stdin", stdin=m.dry_password + "\n", code=6)
    run(*login, "dave", "--password-stdin", stdin=m.yaml_new_password + "\n")
    run(*login, "erin", "--password-stdin", stdin=m.rest_password + "\n")
    run(*login, "frank", "--password-stdin", stdin=m.dry_password + "\n", code=6)
    run("logout")


def test_no_secret_value_password_or_token_leaks_anywhere(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    m = Markers()
    assert len(set(m.secret_values() + m.credentials())) == 19

    # Positive controls of the search itself.
    planted = f"noise {m.creds_token} noise"
    assert find([m.creds_token, m.gh_token], planted) == [m.creds_token]
    for pad in (b"", b"a", b"ab"):
        blob = base64.b64encode(pad + m.gh_token.encode() + b"tail")
        assert find([m.gh_token], b"x" + blob + b"y") == [m.gh_token]
    assert find([m.gh_token], json.dumps({"v": m.gh_token.encode().hex()})) == [m.gh_token]
    assert find(m.secret_values(), "leak-" + uuid.uuid4().hex) == []

    control = f"probe-{uuid.uuid4().hex}"
    data_dir = tmp_path / "data"
    edit_dir = tmp_path / "edits"
    edit_dir.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(edit_dir))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db_env = (
        {"MCPD_DATABASE_URL": database.url, "MCPD_DATABASE_SCHEMA": database.schema or ""}
        if database.engine == "postgres"
        else {}
    )
    env = clean_env(tmp_path, MCPD_ADMIN_PASSWORD=m.password, **db_env)
    settings = Settings(
        data_dir=data_dir,
        database_url=database.url if database.engine == "postgres" else None,
        database_schema=database.schema,
    )
    log = tmp_path / "mcpd.log"
    evidence = Evidence()
    serve = [sys.executable, "-c", SERVE_LOGGING_SQL, "serve", "--port", str(port)]
    serve += ["--data-dir", str(data_dir), "--log-level", "debug"]
    with started(serve, env, log) as mcpd:
        wait_until(lambda: healthy(url), "mcpd /healthz", mcpd, log)
        admin_token = (data_dir / "admin.token").read_text().strip()
        admin_env = base_env(tmp_path / "admin-config.yaml")
        admin_env |= {"MCPCTL_SERVER": url, "MCPCTL_TOKEN": admin_token}
        run = Run(Mcpctl(tmp_path / "admin-config.yaml", admin_env), evidence)
        headers = {"Authorization": f"Bearer {admin_token}"}
        # A control that is not secret goes where a leak would: an object name is stored,
        # audited, backed up and logged, and a query string is in the access log.
        run("create", "secret", control, "--from-literal", "k=v")
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            seen = exercise(run, Http(client, evidence), m, tmp_path)
            assert client.get("/healthz", params={"probe": control}).status_code == 200

        login_config = tmp_path / "login-config.yaml"
        login_env = base_env(login_config) | {"MCPCTL_SERVER": url}
        login_token = password_session(Mcpctl(login_config, login_env), evidence, m, url)
        users_config = tmp_path / "users-config.yaml"
        users_env = base_env(users_config) | {"MCPCTL_SERVER": url}
        user_sessions(Mcpctl(users_config, users_env), evidence, m, url)

        # Positive control: asked to reveal, the same CLI shows the values, after everything.
        shown = run("get", "secret", "creds", "--show-values", "-o", "json", scan=False).stdout
        assert find(m.secret_values(), shown) == [m.creds_token, m.creds_user, m.multiline]
        shown = run("describe", "secret", "gh", "--show-values", scan=False).stdout
        assert find(m.secret_values(), shown) == [m.gh_token]

        for path, content in files_under(data_dir).items():  # the SQLite -wal while it is live
            evidence.add(f"live data dir file {path}", content)
        assert stop_with_sigint(mcpd, log) == 0

    log_text = log.read_text()
    evidence.add("mcpd log", log_text)
    evidence.add("in-process log records (caplog)", caplog.text)
    for path, content in files_under(data_dir).items():
        evidence.add(f"data dir file {path}", content)
    for path, content in files_under(edit_dir).items():
        evidence.add(f"edit temp file {path}", content)
    for name in (
        "backup.yaml",
        "backup.json",
        "editor-saw.yaml",
        "login-config.yaml",
        "users-config.yaml",
    ):
        evidence.add(name, (tmp_path / name).read_bytes())
    assert not (tmp_path / "admin-config.yaml").exists()  # the admin CLI ran on env only
    rows = asyncio.run(all_rows(settings))
    for table, table_rows in rows.items():
        evidence.add(f"table {table}", rows_as_bytes(table_rows))

    # The scan looked where things are: each place holds what it should.
    places = ["mcpd log", "table objects", "table audit_events", "backup.yaml", "backup.json"]
    if database.engine == "sqlite":
        places.append(f"live data dir file {data_dir / 'mcpd.db-wal'}")
    for where in places:
        assert find([control], evidence.items[where]) == [control], where
    assert '"GET /api/v1/secrets/creds HTTP/1.1" 200' in log_text  # uvicorn access log
    assert "INFO sqlalchemy.engine.Engine: INSERT INTO objects" in log_text  # with parameters
    assert "Traceback" not in log_text
    assert "creds" in seen["completion"]
    assert "Secret" in seen["audit"]
    items = evidence.items
    assert b"token" in items["table objects"]
    assert b"creds" in items["table audit_events"]
    assert b"admin" in items["table users"]
    assert rows["tokens"]
    assert b"creds" in items["backup.yaml"]
    assert b"edited: 'yes'" not in items["editor-saw.yaml"]
    assert b"kind: Secret" in items["editor-saw.yaml"]
    assert b"kind: User" in items["editor-saw.yaml"]
    # The passwords the test gave are in the manifests it wrote, and stored only as hashes: the
    # backup's users section has argon2id hashes that verify against exactly those markers.
    assert find(m.user_passwords(), seen["written"]) == [
        m.yaml_password,
        m.yaml_new_password,
        m.bad_password,
    ]
    hashes = {u["name"]: u["passwordHash"] for u in yaml.safe_load(items["backup.yaml"])["users"]}
    assert PasswordHasher().verify(hashes["alice"], m.stdin_password)
    assert PasswordHasher().verify(hashes["dave"], m.yaml_new_password)
    assert b"$argon2id$" in items["table users"]
    assert "Permissions:" in seen["describe alice"]
    assert "alice-github" in seen["describe alice"]
    assert "group devs" in seen["describe alice"]
    assert seen["whoami as"] == "alice (impersonated by admin)\n", seen["whoami as"]
    assert '"alice"' in seen["user audit"]
    assert '"dave"' in seen["user audit"]
    # The servers printed their secrets; their logs show where, scrubbed.
    assert "token=<hidden>" in seen["logs"]
    assert "failing with <hidden>" in seen["crash logs"]
    assert "cert=<hidden>" in seen["pem logs"]
    assert any("logs/servers/echo.log" in k for k in items)
    assert len(evidence.items) > 300
    if database.engine == "sqlite":
        db_files = [k for k in items if k.startswith("live data dir file") and "mcpd.db" in k]
        assert any(k.endswith("-wal") for k in db_files), db_files
        assert any(b"vaulted" in items[k] for k in db_files)

    assert evidence.leaks(m.secret_values()) == {}
    # Passwords, the passphrase and tokens: not in the log, the audit trail or any table. (The
    # CLI output and config files count too, except the login token in its own config.)
    assert evidence.leaks(m.credentials()) == {}
    stored = {k: v for k, v in items.items() if k.startswith(("mcpd log", "table ", "data dir"))}
    token_places = Evidence({k: v for k, v in stored.items() if "admin.token" not in k})
    assert token_places.leaks([admin_token, login_token]) == {}
