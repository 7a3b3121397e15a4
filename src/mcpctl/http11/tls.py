"""The TLS side of https origins: certificates are always verified, against the system's trust
store (which OpenSSL's ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` replace) plus an optional file of
extra CA certificates, e.g. a company's own CA that signs an internal vLLM's certificate."""

from __future__ import annotations

import os
import ssl


def client_context(ca_file: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """A verifying client context: the default trust store, and ``ca_file``'s certificates.

    Build one and share it: loading the trust store costs milliseconds.

    Raises:
        ValueError: ``ca_file`` cannot be read or holds no PEM certificate.
    """
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
            raise ValueError(
                f"cannot load CA certificates from {os.fspath(ca_file)}: {reason}"
            ) from exc
    return context
