"""The MFA server: store, verification service, REST API (and later web pages and RADIUS)."""
