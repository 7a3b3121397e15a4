"""`mcpctl auth can-i VERB KIND [NAME]`: yes (exit 0) or no (exit 1), for the token's user."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Mcpctl
from tests.cli.samples import document, ok, write
from tests.conftest import LiveMcpd
from tests.people import add_person_live


def test_can_i_prints_yes_or_no_and_exits_0_or_1(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    alice = {"MCPCTL_TOKEN": add_person_live(live_mcpd, "alice")}
    binding = {"role": "view", "resource": "servers", "name": "web"}
    rbac = document("RbacDefinition", "alice", {"subjects": ["user:alice"], "bindings": [binding]})
    ok(mcpctl("apply", "-f", str(write(tmp_path, "rbac.yaml", rbac))))

    admin = mcpctl("auth", "can-i", "run", "backup")
    named = mcpctl("auth", "can-i", "view", "server", "web", env=alice)
    other = mcpctl("auth", "can-i", "view", "srv", "db", env=alice)
    backup = mcpctl("auth", "can-i", "run", "backup", env=alice)
    unknown = mcpctl("auth", "can-i", "view", "widgets", env=alice)

    assert (admin.exit_code, admin.stdout) == (0, "yes\n")
    assert (named.exit_code, named.stdout) == (0, "yes\n")
    assert (other.exit_code, other.stdout) == (1, "no\n")
    assert (backup.exit_code, backup.stdout) == (1, "no\n")
    assert unknown.exit_code == 3
    assert "unknown kind 'widgets'" in unknown.stderr
