"""Money as integer minor units plus an ISO 4217 currency; decimal amounts at the API edge."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

_TWO_DECIMALS = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CNY
COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS
INR IRR KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN
NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP
STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWL
"""
_NO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"

# ISO 4217 active codes with their minor-unit exponent (codes not listed here are refused).
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(_TWO_DECIMALS.split(), 2),
    **dict.fromkeys(_NO_DECIMALS.split(), 0),
    **dict.fromkeys(_THREE_DECIMALS.split(), 3),
}
CURRENCIES = tuple(sorted(_EXPONENTS))  # every code the platform accepts


class MoneyError(ValueError):
    """An amount or currency the platform refuses."""


def normalise_currency(code: object) -> str:
    if not isinstance(code, str) or code.strip().upper() not in _EXPONENTS:
        raise MoneyError(f"unknown ISO 4217 currency {code!r}")
    return code.strip().upper()


def exponent(currency: str) -> int:
    return _EXPONENTS[normalise_currency(currency)]


# Bounds checked before any arithmetic: `int()` of 1e999990 alone burns half a minute of CPU.
MAX_AMOUNT = Decimal(10) ** 13  # major units; far above any real price, far below BIGINT in minor units
MAX_DIGITS = 40  # significant digits; more than any currency needs, so extra ones meet the currency's own rule
MAX_TEXT = 100  # characters of an amount given as text, checked before parsing it


def bounded_decimal(amount: object) -> Decimal:
    """`amount` as an exact Decimal small enough to compute with: finite, below MAX_AMOUNT in absolute
    value, with at most MAX_DIGITS digits and decimal places; MoneyError otherwise."""
    value = _parsed(amount)
    if not value.is_finite():
        raise MoneyError("must be a finite number")
    _, digits, places = value.as_tuple()
    if len(digits) > MAX_DIGITS:
        raise MoneyError(f"has more than {MAX_DIGITS} digits")
    if -int(places) > MAX_DIGITS:
        raise MoneyError(f"has more than {MAX_DIGITS} decimal places")
    if abs(value) >= MAX_AMOUNT or int(places) > MAX_AMOUNT.adjusted():
        raise MoneyError(f"must be less than {MAX_AMOUNT:f} in absolute value")
    return value


def _parsed(amount: object) -> Decimal:
    if isinstance(amount, bool) or not isinstance(amount, int | float | str | Decimal):
        raise MoneyError("must be a number")
    if isinstance(amount, str) and len(amount) > MAX_TEXT:
        raise MoneyError(f"has more than {MAX_DIGITS} digits")
    try:
        return Decimal(str(amount) if isinstance(amount, float) else amount)  # a float as written: 19.99
    except InvalidOperation:
        raise MoneyError("must be a number") from None


def to_minor(amount: object, currency: str) -> int:
    """Decimal amount → integer minor units; refuses precision the currency does not have."""
    value = bounded_decimal(amount)
    places = exponent(currency)
    # Rounded to the currency's places and compared exactly: the context (28 digits) never rounds away a digit.
    whole = value.quantize(Decimal(1).scaleb(-places))
    if whole != value:
        raise MoneyError(f"has more than {places} decimal places, which {currency.upper()} does not allow")
    return int(whole.scaleb(places))


def to_decimal(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


def json_number(amount: Decimal) -> float | int:
    """A decimal amount as the JSON number the API returns (whole amounts as integers)."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def percent_of(minor: int, percent: Decimal) -> int:
    """`percent`% of an amount in minor units, rounded half up to a whole minor unit."""
    return int((Decimal(minor) * percent / 100).to_integral_value(rounding=ROUND_HALF_UP))
