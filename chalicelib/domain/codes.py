"""Codes (SPEC 2.10): Crockford base32 from `secrets`, normalised for lookup."""
from __future__ import annotations

import re
import secrets

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # no I, L, O, U
_SHARED = re.compile(r"^[A-Z0-9]{4,32}$")


def random_code(length: int = 12, prefix: str = "") -> str:
    """`length` Crockford characters carry 5 bits each (12 → 60 bits)."""
    return prefix + "".join(secrets.choice(CROCKFORD) for _ in range(length))


def normalize(code: str) -> str:
    """Case-insensitive, dashes and spaces ignored."""
    return re.sub(r"[\s-]", "", code or "").upper()


def is_valid_shared_code(code: str) -> bool:
    return bool(_SHARED.fullmatch(code or ""))


def bits(length: int) -> int:
    return 5 * length
