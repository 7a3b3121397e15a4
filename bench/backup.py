"""`mcpctl restore -f` then `mcpctl backup -o` of 10,000 objects, on SQLite and PostgreSQL.

The file (made once, outside the timings): 100 Secrets (sealed under the passphrase) and 9,900
Servers, as `mcpctl backup` writes them. Each round starts a fresh mcpd on a fresh database,
times the restore of the whole file into it (one transaction) and then a backup of everything
(secret values revealed and sealed again); then the restore of the same document written as
JSON into another fresh mcpd (the YAML file's parsing in the CLI is most of the difference).
Wall time of the whole CLI command, start-up and parsing included.

``MCPCTL_BENCH_BEFORE=DIR`` also measures an mcpd run from another copy of the package (a
folder holding ``mcpctl/``, e.g. the last commit's ``src`` from ``git archive``), round by
round with this one, as the baseline of each row.
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
    Mcpd,
    Row,
    before_source,
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


def write_backup(path: Path) -> dict[str, Any]:
    """A backup document of SECRETS secrets and OBJECTS - SECRETS servers, written as YAML."""
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
    return document


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[1]} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    return elapsed, proc.stdout.decode()


def _restore(mcpd: Mcpd, backup: Path, passphrase: Path) -> float:
    argv = [MCPCTL, "restore", "-f", str(backup), "--passphrase-file", str(passphrase)]
    seconds, report = _run(argv, mcpd.cli_env())
    created = sum(1 for line in report.splitlines() if line.endswith(" created"))
    if created != OBJECTS:
        raise RuntimeError(f"restore created {created} objects, expected {OBJECTS}")
    return seconds


def _one_round(database: str, files: Path, source: Path | None) -> dict[str, float]:
    """Seconds per case: restore (YAML), backup, restore (JSON, into another fresh mcpd)."""
    passphrase = files / "passphrase"
    out: dict[str, float] = {}
    with running_mcpd(database, source=source) as mcpd:
        out[RESTORE] = _restore(mcpd, files / "backup.yaml", passphrase)
        argv = [MCPCTL, "backup", "-o", str(files / "out.yaml"), "--passphrase-file"]
        out[BACKUP], _ = _run([*argv, str(passphrase)], mcpd.cli_env())
    with running_mcpd(database, source=source) as mcpd:
        out[RESTORE_JSON] = _restore(mcpd, files / "backup.json", passphrase)
    return out


RESTORE = "`mcpctl restore -f` (YAML)"
BACKUP = "`mcpctl backup -o` (YAML)"
RESTORE_JSON = "`mcpctl restore -f` (the same as JSON)"
GOALS = {RESTORE: GOAL, BACKUP: GOAL, RESTORE_JSON: None}


def _rows(db: str, samples: dict[str, dict[str, list[float]]], before: Path | None) -> list[Row]:
    rows: list[Row] = []
    what = f"{OBJECTS:,} objects ({SECRETS} secrets), {db}"
    for case, goal in GOALS.items():
        base = None
        for label, by_case in samples.items():  # the "before" first: the ratio is over it
            row = Row("backup", f"{case} {what}{label}", by_case[case], baseline=base)
            if label:
                row.note, base = "baseline", row.median
                row.details = f"mcpd from {before} (MCPCTL_BENCH_BEFORE)"
            else:
                row.goal = goal
            rows.append(row)
    return rows


def run(quick: bool) -> list[Row]:
    rounds = 1 if quick else 3
    before = before_source()
    sources: dict[str, Path | None] = {"": None}
    if before is not None:
        sources = {", before": before, "": None}
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="mcpctl-bench-backup-") as tmp:
        files = Path(tmp)
        (files / "passphrase").write_text(PASSPHRASE + "\n")
        document = write_backup(files / "backup.yaml")
        (files / "backup.json").write_text(json.dumps(document))
        for database in DATABASES:
            if database == "postgres" and (problem := postgres_available()):
                progress(f"backup: SKIPPING PostgreSQL ({problem})")
                continue
            samples: dict[str, dict[str, list[float]]] = {
                label: {case: [] for case in GOALS} for label in sources
            }
            for r in range(rounds):
                for label, source in sources.items():
                    progress(f"backup: {database}{label}, round {r + 1}/{rounds}")
                    for case, seconds in _one_round(database, files, source).items():
                        samples[label][case].append(seconds)
            rows += _rows("SQLite" if database == "sqlite" else "PostgreSQL", samples, before)
    return rows
