"""Encryption of backup files under a passphrase: scrypt derives the key, AES-256-GCM seals.

Every sealed value gets its own random 96-bit nonce and is bound to where it belongs (the
``context`` is the GCM associated data, e.g. ``Secret/db``), so values cannot be swapped between
objects unnoticed. The file records the scrypt parameters; restore accepts only a bounded range
of them, so a crafted file cannot make mcpd spend gigabytes of memory on key derivation.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from mcpctl.errors import InvalidInput
from mcpctl.resources.backup import BackupEncryption

# scrypt at N=2^15, r=8: 32 MiB and about 0.1 s per derivation (OWASP's minimum is N=2^17
# for passwords of logins hit millions of times; one derivation per backup affords more).
DEFAULT_N: Final = 2**15
DEFAULT_R: Final = 8
DEFAULT_P: Final = 1
MAX_N: Final = 2**18
MAX_R: Final = 16
MAX_P: Final = 4
_CANARY: Final = b"mcpctl backup canary v1"
_CANARY_CONTEXT: Final = b"canary"
_NONCE = 12


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, path: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid(path, "not base64") from exc


def invalid(path: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"{path}: {message}", details={"errors": [{"path": path, "message": message}]}
    )


def wrong_passphrase() -> InvalidInput:
    return invalid(
        "passphrase", "wrong passphrase for this backup (or the file was altered); nothing changed"
    )


@dataclass(frozen=True)
class KdfParams:
    salt: bytes
    n: int = DEFAULT_N
    r: int = DEFAULT_R
    p: int = DEFAULT_P

    @classmethod
    def fresh(cls) -> KdfParams:
        return cls(salt=os.urandom(16))

    @classmethod
    def of(cls, enc: BackupEncryption) -> KdfParams:
        """The parameters a file records, within the bounds restore accepts.

        Raises:
            InvalidInput: naming the out-of-range field.
        """
        if enc.n < 2**10 or enc.n > MAX_N or enc.n & (enc.n - 1):
            raise invalid("encryption.n", f"must be a power of two from 1024 to {MAX_N}")
        if not 1 <= enc.r <= MAX_R:
            raise invalid("encryption.r", f"must be from 1 to {MAX_R}")
        if not 1 <= enc.p <= MAX_P:
            raise invalid("encryption.p", f"must be from 1 to {MAX_P}")
        salt = _unb64(enc.salt, "encryption.salt")
        if len(salt) < 16:
            raise invalid("encryption.salt", "must be at least 16 bytes")
        return cls(salt=salt, n=enc.n, r=enc.r, p=enc.p)


class PassphraseBox:
    """AES-256-GCM under a key scrypt derives from a passphrase."""

    def __init__(self, passphrase: str, params: KdfParams) -> None:
        self.params = params
        key = Scrypt(salt=params.salt, length=32, n=params.n, r=params.r, p=params.p).derive(
            passphrase.encode()
        )
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, context: str) -> str:
        nonce = os.urandom(_NONCE)
        return _b64(nonce + self._aead.encrypt(nonce, plaintext, context.encode()))

    def open(self, sealed: str, context: str, path: str) -> bytes:
        """Raises:
        InvalidInput: ``path`` not base64, or a wrong passphrase / altered value."""
        raw = _unb64(sealed, path)
        try:
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode())
        except InvalidTag as exc:
            raise wrong_passphrase() from exc

    def encryption(self) -> BackupEncryption:
        """What the file records: the KDF parameters and a sealed canary."""
        return BackupEncryption(
            salt=_b64(self.params.salt),
            n=self.params.n,
            r=self.params.r,
            p=self.params.p,
            canary=self.seal(_CANARY, _CANARY_CONTEXT.decode()),
        )

    def check(self, enc: BackupEncryption) -> None:
        """Raises:
        InvalidInput: when the passphrase does not open the file's canary."""
        if self.open(enc.canary, _CANARY_CONTEXT.decode(), "encryption.canary") != _CANARY:
            raise wrong_passphrase()
