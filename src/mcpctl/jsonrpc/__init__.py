"""JSON-RPC and streamable-HTTP pieces shared by mcpd's relay and mcplocal: protocol facts and
our errors as JSON-RPC errors (``protocol``), answers written straight to ASGI (``wire``)."""
