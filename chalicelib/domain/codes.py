"""Codes (SPEC 2.10): Crockford base32 from `secrets`, normalised for lookup. The one codes
module: referral codes, voucher codes and coupon codes (one at a time or in bulk) come from here."""
from __future__ import annotations

import base64
import re
import secrets

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # no I, L, O, U
_SHARED = re.compile(r"^[A-Z0-9]{4,32}$")
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_CROCKFORD = str.maketrans(_B32, CROCKFORD)


def random_code(length: int = 12, prefix: str = "") -> str:
    """`length` Crockford characters carry 5 bits each (12 → 60 bits)."""
    return prefix + "".join(secrets.choice(CROCKFORD) for _ in range(length))


def random_codes(count: int, length: int = 12, prefix: str = "") -> list[str]:
    """`count` codes of `length` Crockford characters (5 random bits each) from `secrets`.

    One `token_bytes` call and a C-level base32 encode for the whole batch (bulk coupon
    codes): every output character is 5 independent uniform bits (the input is a whole
    number of 5-byte groups, so there is no padding), then translated to the Crockford
    alphabet.
    """
    if count <= 0:
        return []
    chars = count * length
    groups = -(-chars // 8)
    text = base64.b32encode(secrets.token_bytes(groups * 5)).decode("ascii").translate(_TO_CROCKFORD)
    return [prefix + text[i:i + length] for i in range(0, chars, length)]


def normalize(code: str) -> str:
    """Case-insensitive, dashes and spaces ignored."""
    return re.sub(r"[\s-]", "", code or "").upper()


def is_valid_shared_code(code: str) -> bool:
    """A shared (campaign-wide) code as normalised: 4-32 characters of A-Z and 0-9."""
    return bool(_SHARED.fullmatch(code or ""))


def bits(length: int) -> int:
    """The random bits of a code of `length` characters."""
    return 5 * length
