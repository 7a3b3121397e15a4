"""The backup document and the backup/restore requests, as they travel between CLI and mcpd.

A backup is one document (YAML on disk, JSON on the wire)::

    apiVersion: mcpctl/v1
    kind: Backup
    formatVersion: 1
    createdAt: ...
    mcpdVersion: 0.1.0
    encryption: {cipher: AES-256-GCM, kdf: scrypt, salt, n, r, p, canary}
    users: [{name, displayName, admin, disabled, passwordHash}]
    objects: [{apiVersion, kind, metadata: {name, labels}, spec, encryptedSpec?}]

Objects come in the kinds' apply order. An object whose revealed spec differs from its masked
one (a Secret's values) carries the masked spec in ``spec`` and the whole revealed spec in
``encryptedSpec``: AES-256-GCM under a key derived from the passphrase, so the file holds no
plaintext secret value. Tokens are never backed up.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import Field, SecretStr

from mcpctl.resources.envelope import Strict

FORMAT_VERSION: Final = 1
BACKUP_KIND: Final = "Backup"
MIN_PASSPHRASE_LENGTH: Final = 8

ConflictPolicy = Literal["skip", "overwrite"]
RestoreOutcome = Literal["created", "configured", "unchanged", "skipped"]


class BackupEncryption(Strict):
    """How the secret values of this file are encrypted; ``canary`` proves the passphrase."""

    cipher: Literal["AES-256-GCM"] = "AES-256-GCM"
    kdf: Literal["scrypt"] = "scrypt"
    salt: str = Field(description="base64, 16 random bytes")
    n: int = Field(description="scrypt CPU/memory cost (a power of two)")
    r: int = Field(description="scrypt block size")
    p: int = Field(description="scrypt parallelism")
    canary: str = Field(description="a known text sealed with the key: a wrong passphrase fails")


class BackupUser(Strict):
    """A row of the users table. The hash is argon2id: not a secret, but guard the file."""

    name: str
    displayName: str = ""
    admin: bool = False
    disabled: bool = False
    passwordHash: str | None = None


class BackupDocument(Strict):
    apiVersion: Literal["mcpctl/v1"] = "mcpctl/v1"
    kind: Literal["Backup"] = BACKUP_KIND
    formatVersion: int = FORMAT_VERSION
    createdAt: datetime
    mcpdVersion: str
    encryption: BackupEncryption
    users: list[BackupUser] = Field(default_factory=list)
    objects: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Objects of every kind, in apply order (apiVersion, kind, metadata, spec, "
        "and encryptedSpec where the spec holds secret values).",
    )


class BackupRequest(Strict):
    passphrase: SecretStr = Field(
        description=f"At least {MIN_PASSPHRASE_LENGTH} characters; encrypts the secret values."
    )


class RestoreRequest(Strict):
    passphrase: SecretStr = Field(description="The passphrase the backup was made with.")
    backup: dict[str, Any] = Field(description="The backup document, as `backup` wrote it.")


class RestoreItem(Strict):
    kind: str = Field(description="A kind of the registry, or User.")
    name: str
    outcome: RestoreOutcome


class RestoreResult(Strict):
    dryRun: bool
    conflict: ConflictPolicy
    results: list[RestoreItem]
