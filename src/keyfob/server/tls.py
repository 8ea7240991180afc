"""TLS for ``keyfob serve --tls-cert/--tls-key``: a small site needs no reverse proxy.

The certificate and key are checked here, before anything starts, so that a wrong path or a
key that does not belong to the certificate is one clear line instead of a uvicorn traceback
after the database was opened. Served over TLS, the session cookies are ``Secure`` (the
request's scheme is https, web/common.py) and every answer carries HSTS (api/app.py)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from keyfob.server.settings import SettingsError

HSTS = b"max-age=31536000"
"""One year; no ``includeSubDomains``: keyfob cannot know what else runs under the domain."""


def tls_options(cert: Path | None, key: Path | None) -> dict[str, Any]:
    """``uvicorn.run`` keyword arguments for TLS, or none when neither file is given."""
    if cert is None and key is None:
        return {}
    if cert is None or key is None:
        raise SettingsError(
            "--tls-cert and --tls-key go together",
            hint="give the certificate chain (PEM) and its private key (PEM)",
        )
    for what, path in (("certificate", cert), ("private key", key)):
        if not path.is_file():
            raise SettingsError(f"the TLS {what} {path} does not exist or is not a file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise SettingsError(
            f"cannot use {cert} with {key} for TLS ({exc.reason or 'not PEM, or not a pair'})",
            hint="give the PEM certificate chain and the unencrypted PEM key that belongs to it",
        ) from None
    except OSError as exc:
        raise SettingsError(f"cannot read the TLS files: {exc.strerror}") from None
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
