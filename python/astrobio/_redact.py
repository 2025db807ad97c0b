"""Redaction of credentials in text that leaves the process: error messages, logs, manifests.

Object-store URLs carry secrets in two places: the userinfo (`s3://KEY:SECRET@bucket/...`) and
signed query parameters (`?X-Amz-Signature=...`, `?sig=...`, `?token=...`). Secrets can also
reach a message by way of the environment (a token variable echoed into a path). `redact`
removes all three before the text is shown or stored.
"""

from __future__ import annotations

import os
import re

__all__ = ["redact", "REDACTED"]

REDACTED = "***"

# scheme:/ or scheme:// (pathlib collapses the double slash), then userinfo up to the '@'
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*:/{1,2})(?P<userinfo>[^/\s@'\"`]+)@")
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|"
    r"sig|signature|token|access_token|id_token|refresh_token|sas|key|api_key|apikey|secret|password|passwd|pwd|"
    r"client_secret|credential|credentials|auth)=)(?P<value>[^&;\s'\"`]+)",
    re.IGNORECASE,
)
# environment variables whose values are secrets, by name
_SECRET_ENV = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|ACCESS_KEY|API_KEY|PRIVATE_KEY|_SAS)", re.IGNORECASE)


def _env_secrets() -> list[str]:
    # read at call time: tokens set after import count too; short values would redact noise
    values = {v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= 12}
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with URL credentials, signed query values and secret environment values
    replaced by `***`."""
    if not text:
        return text
    out = _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    out = _SECRET_QUERY.sub(lambda m: f"{m.group('key')}{REDACTED}", out)
    for secret in _env_secrets():
        if secret in out:
            out = out.replace(secret, REDACTED)
    return out
