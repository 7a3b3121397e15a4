"""`mcpctl restore -f` then `mcpctl backup -o` of 10,000 objects, on SQLite and PostgreSQL.

The file (made once, outside the timings): 100 Secrets (sealed under the passphrase) and 9,900
Servers, as `mcpctl backup` writes them. Each round starts a fresh mcpd on a fresh database,
times the restore of the whole file into it (one transaction) and then a backup of everything
(secret values revealed and sealed again). Wall time of the whole CLI command, start-up and
YAML included.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import (
    DATABASES,
    MCPCTL,
    Row,
    postgres_available,
    progress,
    running_mcpd,
    server_name,
    server_object,
)

OBJECTS = 10_000
SECRETS = 100
GOAL = 10.0
PASSPHRASE = "bench backup passphrase"


def write_backup(path: Path) -> None:
    """A backup document of SECRETS secrets and OBJECTS - SECRETS servers."""
    from mcpctl.mcpd.services.passphrase import KdfParams, PassphraseBox
    from mcpctl.resources.yamlcodec import dump

    box = PassphraseBox(PASSPHRASE, KdfParams.fresh())
    objects: list[dict[str, Any]] = []
    for i in range(SECRETS):
        name = f"sec-{i:05d}"
        data = {"token": f"value-{i}", "user": "bench"}
        objects.append(
            {
                "apiVersion": "mcpctl/v1",
                "kind": "Secret",
                "metadata": {"name": name, "labels": {"bench": "yes"}},
                "spec": {"data": dict.fromkeys(data)},
                "encryptedSpec": box.seal(json.dumps({"data": data}).encode(), f"Secret/{name}"),
            }
        )
    objects += [server_object(server_name(i)) for i in range(OBJECTS - SECRETS)]
    document = {
        "apiVersion": "mcpctl/v1",
        "kind": "Backup",
        "formatVersion": 1,
        "createdAt": "2026-01-01T00:00:00Z",
        "mcpdVersion": "bench",
        "encryption": box.encryption().model_dump(mode="json"),
        "users": [],
        "objects": objects,
    }
    path.write_text(dump(document))


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[1]} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    return elapsed, proc.stdout.decode()


def _one_round(database: str, backup: Path, passphrase: Path, out: Path) -> tuple[float, float]:
    with running_mcpd(database) as mcpd:
        env = mcpd.cli_env()
        restore_s, report = _run(
            [MCPCTL, "restore", "-f", str(backup), "--passphrase-file", str(passphrase)], env
        )
        created = sum(1 for line in report.splitlines() if line.endswith(" created"))
        if created != OBJECTS:
            raise RuntimeError(f"restore created {created} objects, expected {OBJECTS}")
        backup_s, _ = _run(
            [MCPCTL, "backup", "-o", str(out), "--passphrase-file", str(passphrase)], env
        )
    return restore_s, backup_s


def run(quick: bool) -> list[Row]:
    rounds = 1 if quick else 3
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="mcpctl-bench-backup-") as tmp:
        backup = Path(tmp) / "backup.yaml"
        passphrase = Path(tmp) / "passphrase"
        passphrase.write_text(PASSPHRASE + "\n")
        write_backup(backup)
        for database in DATABASES:
            if database == "postgres" and (problem := postgres_available()):
                progress(f"backup: SKIPPING PostgreSQL ({problem})")
                continue
            restores: list[float] = []
            backups: list[float] = []
            for r in range(rounds):
                progress(f"backup: {database}, round {r + 1}/{rounds}")
                restore_s, backup_s = _one_round(database, backup, passphrase, Path(tmp) / "o.yaml")
                restores.append(restore_s)
                backups.append(backup_s)
            db = "SQLite" if database == "sqlite" else "PostgreSQL"
            what = f"{OBJECTS:,} objects ({SECRETS} secrets), {db}"
            rows.append(Row("backup", f"`mcpctl restore -f` {what}", restores, goal=GOAL))
            rows.append(Row("backup", f"`mcpctl backup -o` {what}", backups, goal=GOAL))
    return rows
