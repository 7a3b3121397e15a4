"""Encryption at rest for secret values: AES-256-GCM with a random 96-bit nonce per write."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mcpctl.errors import AppError, InvalidInput

_VERSION = b"\x01"
KEY_FILE = "secret.key"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise InvalidInput("secret key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        """Raises:
        AppError: when the data was sealed with another key or tampered with."""
        if sealed[:1] != _VERSION:
            raise AppError("sealed value has an unknown format version")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], context)
        except InvalidTag as exc:
            raise AppError(
                "cannot decrypt a secret: MCPD_SECRET_KEY (or secret.key) is not the key it was "
                "written with"
            ) from exc


def decode_key(text: str) -> bytes:
    """Raises:
    InvalidInput: when the text is not 32 bytes of base64."""
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("MCPD_SECRET_KEY: not base64") from exc
    if len(key) != 32:
        raise InvalidInput(
            "MCPD_SECRET_KEY: must be 32 bytes, base64-encoded "
            "(make one: python -c 'import os,base64;"
            "print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
        )
    return key


def load_or_create_key(data_dir: Path) -> bytes:
    """Read ``secret.key`` from the data dir, creating it (mode 0600) on first start."""
    path = data_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return decode_key(path.read_text())
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
    return decode_key(path.read_text())
