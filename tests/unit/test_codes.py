"""Codes (SPEC 2.10): Crockford base32 from `secrets`, at least 60 random bits, normalised lookups."""
import math
import secrets

import pytest

from chalicelib.domain import codes


def test_crockford_alphabet_has_32_symbols_without_i_l_o_u():
    assert len(codes.CROCKFORD) == len(set(codes.CROCKFORD)) == 32
    assert not set(codes.CROCKFORD) & set("ILOU")
    assert set(codes.CROCKFORD) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def test_default_code_carries_at_least_60_bits():
    code = codes.random_code()
    assert len(code) == 12
    assert codes.bits(len(code)) >= 60
    assert len(code) * math.log2(len(codes.CROCKFORD)) >= 60


def test_codes_use_the_whole_alphabet_and_do_not_repeat():
    drawn = [codes.random_code(12) for _ in range(3000)]
    assert len(set(drawn)) == 3000
    assert set("".join(drawn)) == set(codes.CROCKFORD)


def test_codes_come_from_secrets(monkeypatch):
    picks = iter("ABCDEFGHJKMN")
    monkeypatch.setattr(secrets, "choice", lambda seq: next(picks))
    assert codes.random_code(12, prefix="XMAS-") == "XMAS-ABCDEFGHJKMN"


@pytest.mark.parametrize("raw,normal", [(" ab-cd-12 ", "ABCD12"), ("abcd efgh", "ABCDEFGH"), ("A-B-C-D", "ABCD"),
                                        ("", ""), (None, "")])
def test_lookups_ignore_case_dashes_and_spaces(raw, normal):
    assert codes.normalize(raw) == normal


def test_a_generated_code_survives_normalisation():
    code = codes.random_code(12)
    assert codes.normalize("-".join([code[:4].lower(), code[4:8], code[8:]])) == code


@pytest.mark.parametrize("code,ok", [("ABCD", True), ("SPRING2026", True), ("A" * 32, True), ("ABC", False),
                                     ("A" * 33, False), ("spring", False), ("AB-CD", False), ("", False)])
def test_shared_codes_are_4_to_32_of_a_z_and_digits(code, ok):
    assert codes.is_valid_shared_code(code) is ok
