import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.phones import PhoneError, normalise


@pytest.mark.parametrize("raw,expected", [
    ("13812345678", "13812345678"),
    ("+86 138-1234-5678", "13812345678"),
    ("008613812345678", "13812345678"),
    ("8613812345678", "13812345678"),
    (13812345678, "13812345678"),
    ("13812345678.0", "13812345678"),
    ("010-12345678", "01012345678"),
    ("(0755) 1234 5678", "075512345678"),
    ("0571-8765432", "05718765432"),
    ("+86 10 1234 5678", "01012345678"),
])
def test_valid_numbers_normalise(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize("raw,reason", [
    ("", "为空"), ("1381234567", "11位"), ("12812345678", "11位"), ("2345678", "区号"),
    ("1381234567a", "非数字"), ("010-123", "区号"),
])
def test_invalid_numbers_say_why(raw, reason):
    with pytest.raises(PhoneError, match=reason):
        normalise(raw)


mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)


@given(mobiles, st.sampled_from(["", "+86", "0086", "86", "+86 "]),
       st.sampled_from(["", " ", "-"]))
def test_any_mobile_with_prefix_and_separators_normalises_to_itself(number, prefix, sep):
    typed = prefix + sep.join([number[:3], number[3:7], number[7:]])
    assert normalise(typed) == number


@given(mobiles)
def test_normalising_is_idempotent(number):
    assert normalise(normalise(number)) == normalise(number)
