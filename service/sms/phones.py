"""Phone numbers: E.164 validation with ``phonenumbers``, and the mask shown in responses and logs."""

from __future__ import annotations

import phonenumbers


class InvalidPhone(ValueError):
    pass


#: Number types a text message can reach; premium-rate, toll-free, shared-cost and the rest are refused.
MOBILE_TYPES = frozenset({phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE})


def normalize_mobile(raw: str, allowed_regions: tuple[str, ...]) -> str:
    """A mobile number of an allowed region, in E.164; else :class:`InvalidPhone`.

    Guardian SMS cost money and reach a person: a number abroad or of a premium-rate, toll-free or landline
    type is refused before anything is sent to it.
    """
    e164 = normalize_phone(raw)
    number = phonenumbers.parse(e164, None)
    region = phonenumbers.region_code_for_number(number)
    if region not in allowed_regions:
        raise InvalidPhone(f"only numbers of {', '.join(allowed_regions)} are accepted")
    if phonenumbers.number_type(number) not in MOBILE_TYPES:
        raise InvalidPhone("not a mobile number: a text message cannot reach it")
    return e164


def normalize_phone(raw: str) -> str:
    """Return the number in E.164, or raise :class:`InvalidPhone`. Only E.164 input is accepted."""
    if not raw.startswith("+"):
        raise InvalidPhone("give the number in E.164 form, e.g. +8613812345678")
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(str(exc)) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number")
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if e164 != raw:
        raise InvalidPhone(f"give the number in E.164 form: {mask_phone(e164)}")
    return e164


def mask_phone(e164: str) -> str:
    """``+8613812345678`` → ``+86 138****5678``: enough to recognise, not enough to call."""
    try:
        number = phonenumbers.parse(e164, None)
        country, national = str(number.country_code), str(number.national_number)
    except phonenumbers.NumberParseException:
        return "+** ****"
    if len(national) < 7:
        return f"+{country} ****{national[-2:]}"
    return f"+{country} {national[:3]}{'*' * (len(national) - 7)}{national[-4:]}"


def audit_mask(masked: str) -> str:
    """``+86 138****5678`` → ``+86 ***********``: the country code only, for records that outlive erasure."""
    country, _, national = masked.partition(" ")
    return f"{country} {'*' * len(national)}" if national else "+** ****"
