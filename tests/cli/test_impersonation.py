"""`mcpctl --as USER ...` (or MCPCTL_AS): every request acts as USER, against a live mcpd."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Mcpctl
from tests.cli.samples import document, ok, write
from tests.cli.test_completion import complete, plain
from tests.conftest import LiveMcpd
from tests.people import add_person_live


def grant(mcpctl: Mcpctl, tmp_path: Path, user: str, *bindings: dict[str, str]) -> None:
    """Make ``bindings`` the only ones of ``user`` (applied as the admin, without --as)."""
    spec = {"subjects": [f"user:{user}"], "bindings": list(bindings)}
    rbac = document("RbacDefinition", f"probe-{user}", spec)
    ok(mcpctl("apply", "-f", str(write(tmp_path, f"{user}.yaml", rbac))))


def test_as_evaluates_can_i_with_the_targets_permissions(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    add_person_live(live_mcpd, "alice")

    admin = mcpctl("auth", "can-i", "edit", "servers")
    before = mcpctl("--as", "alice", "auth", "can-i", "edit", "servers")
    grant(mcpctl, tmp_path, "alice", {"role": "edit", "resource": "servers"})
    after = mcpctl("--as", "alice", "auth", "can-i", "edit", "servers")

    assert (admin.exit_code, admin.stdout) == (0, "yes\n")
    assert (before.exit_code, before.stdout) == (1, "no\n")
    assert (after.exit_code, after.stdout) == (0, "yes\n")


def test_a_create_as_another_user_needs_their_permission(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    add_person_live(live_mcpd, "alice")
    create = ("create", "server", "web", "--command", "uvx")

    denied = mcpctl("--as", "alice", *create)
    missing = mcpctl("get", "server", "web")
    grant(mcpctl, tmp_path, "alice", {"role": "create", "resource": "servers"})
    created = mcpctl(*create, env={"MCPCTL_AS": "alice"})

    assert denied.exit_code == 6
    assert denied.stderr == "error: user 'alice' may not create servers/web\n"
    assert missing.exit_code == 4
    assert ok(created).stdout == "server/web created\n"
    assert ok(mcpctl("get", "server", "web", "-o", "name")).stdout == "server/web\n"


def test_whoami_shows_both_names(mcpctl: Mcpctl, live_mcpd: LiveMcpd) -> None:
    add_person_live(live_mcpd, "alice")

    acting = ok(mcpctl("--as", "alice", "auth", "whoami"))
    itself = ok(mcpctl("auth", "whoami"))

    assert acting.stdout == "alice (impersonated by admin)\n"
    assert itself.stdout == "admin (admin)\n"


def test_without_the_operation_or_with_an_unknown_user_as_exits_6(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    bob = {"MCPCTL_TOKEN": add_person_live(live_mcpd, "bob")}
    grant(mcpctl, tmp_path, "bob", {"role": "view", "resource": "*"})

    refused = mcpctl("--as", "admin", "get", "servers", env=bob)
    unknown = mcpctl("--as", "nobody", "get", "servers")

    assert refused.exit_code == 6
    assert refused.stderr == (
        "error: user 'bob' may not impersonate other users "
        "(that needs {role: run, action: impersonate})\n"
    )
    assert unknown.exit_code == 6
    assert unknown.stderr == "error: cannot impersonate 'nobody': no such enabled user\n"


def test_credentials_stay_their_owners(mcpctl: Mcpctl, live_mcpd: LiveMcpd) -> None:
    add_person_live(live_mcpd, "alice")

    password = mcpctl(
        "--as", "alice", "auth", "change-password", "--password-stdin", stdin="old\nnew-password\n"
    )
    login = mcpctl("--as", "alice", "login", "--user", "alice", "--password-stdin", stdin="x\n")

    assert password.exit_code == 6
    assert password.stderr.startswith("error: cannot change a password while impersonating")
    assert login.exit_code == 2
    assert "--as does not apply to login" in login.stderr


def test_as_refuses_a_name_no_header_can_carry(offline_mcpctl: Mcpctl) -> None:
    result = offline_mcpctl("--as", "al\nice", "auth", "whoami")

    assert result.exit_code == 2
    assert "Invalid value for '--as'" in result.stderr


def test_as_completes_user_names(mcpctl: Mcpctl, tmp_path: Path) -> None:
    users = "".join(f"---\n{document('User', n, {'displayName': n})}" for n in ("alice", "albert"))
    ok(mcpctl("apply", "-f", str(write(tmp_path, "users.yaml", users))))

    assert complete(mcpctl, "bash", "mcpctl --as al") == plain("albert", "alice")
