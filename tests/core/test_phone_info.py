"""Region and carrier in Chinese from phonenumbers' offline data, cached per prefix."""

import pytest

from core import phone_info


@pytest.mark.parametrize("phone, prefix", [
    ("13800138000", "1380013"), ("075512345678", "755"), ("01012345678", "10"),
    ("02012345678", "20"), ("05718888888", "571"),
    ("abc", None), ("138001380", None), ("", None), ("12345", None),
])
def test_prefix_is_a_mobiles_first_seven_digits_or_a_landlines_area_code(phone, prefix):
    assert phone_info.prefix_of(phone) == prefix


@pytest.mark.parametrize("phone, region, carrier", [
    ("13800138000", "北京市", "中国移动"),
    ("18612345678", "北京市", "中国联通"),
    ("13912345678", "江苏省常州市", "中国移动"),
    ("075512345678", "广东省深圳市", None),  # landlines have no carrier
    ("01012345678", "北京市", None),
    ("19912345678", None, "中国电信"),  # only the country is known: no region
    ("not a number", None, None),
])
def test_lookup_in_chinese(phone, region, carrier):
    assert phone_info.lookup(phone) == (region, carrier)


def test_numbers_of_one_prefix_share_one_lookup():
    phone_info._describe.cache_clear()
    for tail in range(100):
        phone_info.lookup(f"1380013{tail:04d}")
    phone_info.lookup("075511112222")
    phone_info.lookup("075533334444")
    info = phone_info._describe.cache_info()
    assert (info.misses, info.hits) == (2, 100)


def test_agrees_with_the_packages_geocoder_and_carrier_lookups():
    import random

    from phonenumbers import carrier, geocoder, is_valid_number, parse

    rng = random.Random(7)
    phones = [f"1{rng.randrange(3, 10)}{rng.randrange(10**9):09d}" for _ in range(3000)]
    phones += [f"0{area}{rng.randrange(10**7, 10**8)}" for area in
               ("10", "20", "21", "24", "755", "571", "898", "692", "991")]
    checked = 0
    for phone in phones:
        number = parse(phone, "CN")
        if not is_valid_number(number):  # there the package's own answers are odd (波兰)
            continue
        checked += 1
        region = geocoder.description_for_valid_number(number, "zh")
        name = carrier.name_for_valid_number(number, "zh") if phone[0] == "1" else ""
        expected = (None if region in ("", "中国") else region, name or None)
        assert phone_info.lookup(phone) == expected, phone
    assert checked > 1500
