import datetime as dt

import pytest

from jingkong.people import idnumber
from jingkong.people.idnumber import IdNumberError, id_hash, id_mask, phone_mask, validate

VALID = "11010519491231002X"  # the GB 11643 specimen number
TODAY = dt.date(2022, 1, 1)


def test_a_valid_number_is_normalised():
    assert validate(" 11010519491231002x ", today=TODAY) == VALID
    assert idnumber.birth_date_of(VALID) == dt.date(1949, 12, 31)
    assert idnumber.sex_of(VALID) == "F"


@pytest.mark.parametrize("number, reason", [
    ("110105194912310021", "check digit"),
    ("11010519490230002X", "not a real date"),
    ("110105189912310020", "before 1900"),
    ("110105203001010010", "in the future"),
    ("11010519491231002", "18 characters"),
    ("1101051949123100AX", "17 digits"),
    ("", "missing"),
    ("11010549123100A", "only digits"),
])
def test_invalid_numbers_say_why(number, reason):
    with pytest.raises(IdNumberError, match=reason):
        validate(number, today=TODAY)


def test_legacy_15_digit_numbers_are_converted_to_18():
    converted = validate("110105491231002", today=TODAY)
    assert converted == "11010519491231002X"
    assert id_hash(converted) == id_hash(VALID)


def test_leap_day_is_a_real_birth_date_only_in_leap_years():
    first17 = "330206200002290010"[:17]
    assert idnumber.is_valid(first17 + idnumber.check_char(first17), today=TODAY)
    first17 = "33020619000229001"
    assert not idnumber.is_valid(first17 + idnumber.check_char(first17), today=TODAY)


def test_id_hash_is_keyed_and_case_insensitive(settings):
    settings.ID_HASH_KEY = "key-one"
    one = id_hash(VALID)
    assert one == id_hash(VALID.lower()) and len(one) == 32 and VALID not in one
    assert int(one, 16) >= 0  # hex
    settings.ID_HASH_KEY = "key-two"
    assert id_hash(VALID) != one
    assert idnumber.id_hash_many([VALID], key="key-one") == [one]
    assert idnumber.id_hash_many([VALID.encode()], key="key-one") == [one]
    # Keys longer than BLAKE2b's 64 bytes are accepted and still matter.
    long_a, long_b = "a" * 100, "a" * 99 + "b"
    assert id_hash(VALID, key=long_a) != id_hash(VALID, key=long_b)


def test_masks():
    assert id_mask("33020619800101123x") == "330206********123X"
    assert phone_mask("13812341234") == "138****1234"
    assert phone_mask("") == ""
    assert phone_mask("12345") == "***45"
