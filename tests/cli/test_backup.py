"""`mcpctl backup -o` and `mcpctl restore -f`: files, passphrases, reports and exit codes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import yaml

from tests.cli.conftest import Mcpctl
from tests.cli.samples import STACK, STACK_REFS, lines, load_yaml, ok, write

MARKER = "cli-backup-marker-93ad1f"
PASSPHRASE = "correct horse battery staple"


def setup(mcpctl: Mcpctl, tmp_path: Path) -> Path:
    """The sample stack (its secret holds MARKER) applied; returns the passphrase file."""
    ok(mcpctl("apply", "-f", str(write(tmp_path, "stack.yaml", STACK.replace("s3cret", MARKER)))))
    return write(tmp_path, "passphrase", PASSPHRASE + "\n")


def everything(mcpctl: Mcpctl) -> list[str]:
    return sorted(lines(ok(mcpctl("get", "all", "-o", "name"))))


def delete_stack(mcpctl: Mcpctl) -> None:
    for ref in reversed(STACK_REFS):
        ok(mcpctl("delete", ref))


def test_backup_writes_a_private_yaml_file_that_restore_brings_back(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    passphrase = setup(mcpctl, tmp_path)
    before = everything(mcpctl)
    out = tmp_path / "backup.yaml"

    backed_up = ok(mcpctl("backup", "-o", str(out), "--passphrase-file", str(passphrase)))
    delete_stack(mcpctl)
    restored = ok(mcpctl("restore", "-f", str(out), "--passphrase-file", str(passphrase)))

    assert backed_up.stdout == ""
    assert f"written to {out}" in backed_up.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert MARKER not in out.read_text()
    assert yaml.safe_load(out.read_text())["kind"] == "Backup"
    # Kinds in apply order (a user once, as its User object), objects of one kind by name.
    assert lines(restored) == [
        "secret/creds created",
        "template/timekeeper created",
        "server/clock created",
        "server/time created",
        "project/tools created",
        "prompt/greeting created",
        "user/admin skipped (exists)",
        "rbacdefinition/admin skipped (exists)",
    ]
    assert everything(mcpctl) == before
    revealed = load_yaml(mcpctl("get", "secret", "creds", "-o", "yaml", "--show-values"))
    assert revealed["spec"]["data"] == {"token": MARKER}


def test_backup_to_a_json_file_writes_json_that_restore_accepts(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    passphrase = setup(mcpctl, tmp_path)
    out = tmp_path / "backup.json"

    ok(mcpctl("backup", "-o", str(out), "--passphrase-file", str(passphrase)))
    result = mcpctl("restore", "-f", str(out), "--passphrase-file", str(passphrase))

    assert json.loads(out.read_text())["formatVersion"] == 1
    assert set(lines(ok(result))) == {
        f"{ref} skipped (exists)" for ref in ["user/admin", *STACK_REFS, "rbacdefinition/admin"]
    }


def test_backup_without_a_passphrase_file_is_a_usage_error_naming_the_flag(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    out = tmp_path / "backup.yaml"

    result = mcpctl("backup", "-o", str(out))

    assert result.exit_code == 2
    assert "--passphrase-file" in result.stderr
    assert not out.exists()


def test_restore_with_a_wrong_passphrase_exits_3_with_one_line_and_restores_nothing(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    passphrase = setup(mcpctl, tmp_path)
    out = tmp_path / "backup.yaml"
    ok(mcpctl("backup", "-o", str(out), "--passphrase-file", str(passphrase)))
    delete_stack(mcpctl)
    wrong = write(tmp_path, "wrong", "not the passphrase\n")

    result = mcpctl("restore", "-f", str(out), "--passphrase-file", str(wrong))

    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith("error: passphrase: wrong passphrase")
    assert len(result.stderr.splitlines()) == 1
    assert everything(mcpctl) == []


def test_restore_dry_run_reports_and_overwrite_replaces_changed_objects(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    passphrase = setup(mcpctl, tmp_path)
    out = tmp_path / "backup.yaml"
    ok(mcpctl("backup", "-o", str(out), "--passphrase-file", str(passphrase)))
    ok(mcpctl("apply", "-f", str(write(tmp_path, "new.yaml", STACK.replace("s3cret", "new")))))
    restore = ("restore", "-f", str(out), "--passphrase-file", str(passphrase))

    dry = ok(mcpctl(*restore, "--conflict", "overwrite", "--dry-run"))
    shown_after_dry_run = load_yaml(mcpctl("get", "secret", "creds", "-o", "yaml", "--show-values"))
    real = ok(mcpctl(*restore, "--conflict", "overwrite"))
    shown = load_yaml(mcpctl("get", "secret", "creds", "-o", "yaml", "--show-values"))

    assert "secret/creds configured (dry run)" in lines(dry)
    assert shown_after_dry_run["spec"]["data"] == {"token": "new"}
    assert "secret/creds configured" in lines(real)
    assert "server/clock unchanged" in lines(real)
    assert shown["spec"]["data"] == {"token": MARKER}


def test_restore_of_a_file_that_is_not_a_backup_exits_3_naming_the_field(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    passphrase = setup(mcpctl, tmp_path)
    not_backup = write(tmp_path, "stack.yaml", "apiVersion: mcpctl/v1\nkind: Server\n")
    two = write(tmp_path, "two.yaml", STACK)

    result = mcpctl("restore", "-f", str(not_backup), "--passphrase-file", str(passphrase))
    several = mcpctl("restore", "-f", str(two), "--passphrase-file", str(passphrase))
    missing = mcpctl("restore", "-f", str(tmp_path / "nope"), "--passphrase-file", str(passphrase))

    assert (result.exit_code, result.stderr) == (
        3,
        "error: kind: expected 'Backup', got 'Server': not a backup\n",
    )
    assert several.exit_code == 3
    assert "expected one backup document" in several.stderr
    assert missing.exit_code == 3
