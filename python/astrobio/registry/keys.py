"""API keys: `ab_<key id>_<secret>`, shown once at creation; the database keeps only the
sha256 of the secret (a 256-bit random token needs no slow hash), compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ..errors import ConfigError, DataNotFoundError
from ._db import read_session, write_session
from .core import Registry, _iso
from .models import ApiKey, utcnow

__all__ = ["create_key", "list_keys", "revoke_key", "check_key", "KeyCheck", "SCOPES"]

SCOPES = ("read", "write")
PREFIX = "ab"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(reg: Registry, name: str, scopes: str = "read") -> tuple[str, dict[str, Any]]:
    """A new key (the only time its full text exists outside the caller) and its record.
    `scopes`: "read" or "write" (write includes read)."""
    if not name or len(name) > 128 or not name.isprintable():
        raise ConfigError("key name must be 1-128 printable characters")
    if scopes not in SCOPES:
        raise ConfigError(f"scope must be one of {SCOPES}, not {scopes!r}")
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    stored = "read,write" if scopes == "write" else "read"
    with write_session(reg.engine) as s:
        s.add(ApiKey(key_id=key_id, name=name, secret_hash=_hash(secret), scopes=stored))
    return f"{PREFIX}_{key_id}_{secret}", {"key_id": key_id, "name": name, "scopes": stored}


def list_keys(reg: Registry) -> list[dict[str, Any]]:
    with read_session(reg.engine) as s:
        return [{"key_id": k.key_id, "name": k.name, "scopes": k.scopes, "created": _iso(k.created), "revoked": _iso(k.revoked)}
                for k in s.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke_key(reg: Registry, key_id_or_name: str) -> int:
    """Revoke the key with this id, or every active key with this name; returns how many."""
    with write_session(reg.engine) as s:
        keys = list(s.scalars(select(ApiKey).where((ApiKey.key_id == key_id_or_name) | (ApiKey.name == key_id_or_name),
                                                   ApiKey.revoked.is_(None))))
        if not keys:
            raise DataNotFoundError(f"no active key {key_id_or_name!r}", hint="List keys with `astrobio keys list`")
        for k in keys:
            k.revoked = utcnow()
        return len(keys)


@dataclass(frozen=True)
class KeyCheck:
    """Outcome of checking a presented key: `status` is ok, unknown or revoked."""

    status: str
    key_id: str = ""
    name: str = ""
    scopes: tuple[str, ...] = ()


def check_key(reg: Registry, presented: str) -> KeyCheck:
    parts = presented.split("_", 2) if presented else []
    if len(parts) != 3 or parts[0] != PREFIX:
        return KeyCheck("unknown")
    _, key_id, secret = parts
    with read_session(reg.engine) as s:
        k = s.scalars(select(ApiKey).where(ApiKey.key_id == key_id)).one_or_none()
        if k is None or not hmac.compare_digest(k.secret_hash, _hash(secret)):
            return KeyCheck("unknown")
        if k.revoked is not None:
            return KeyCheck("revoked", k.key_id, k.name)
        return KeyCheck("ok", k.key_id, k.name, tuple(k.scopes.split(",")))
