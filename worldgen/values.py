"""Values as documents write them, and read back exactly: money, numbers and dates.

One module holds both directions so they cannot drift apart: the renderer writes a record's
value in a surface format (``$1,200,000.00``, ``USD 1.2 million``, ``($350.00)``,
``26 Dec 2021``, ``12/26/2021``), and the tokenizer reads every value a document states back to
its canonical form (``1200000.00``, ``-350.00``, ``2021-12-26``), the form records, answers and
derivations use. Reading is exact: money becomes integer cents through ``Decimal`` (never a
float), a scaled figure (``$1.2 million``) is a value only when it is a whole number of cents,
and a date only when it is a real day.

Canonical forms: money ``-1234.56`` (dollars and two-digit cents; a currency mark, ``$``,
``USD`` or ``dollars``, makes a figure money), a plain number as written without its thousands
separators (``1,234`` -> ``1234``, ``7.9`` stays ``7.9``), a date ``YYYY-MM-DD``. Slashed dates
are read month first (``12/26/2021``), as US documents write them; ``26/12/2021`` is not a date
here rather than a guess.

A value's span starts at its first digit, or at the month name of ``December 26, 2021``: a
currency mark or sign before it is context, which keeps a figure written the plain way
(``$17203888.06``) exactly the value it was before this reader existed.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import NamedTuple

MONTHS: dict[str, int] = {
    name.lower(): k
    for k in range(1, 13)
    for name in (calendar.month_name[k], calendar.month_abbr[k])
} | {"sept": 9}
SCALES: dict[str, int] = {
    "thousand": 10**3,
    "k": 10**3,
    "million": 10**6,
    "mn": 10**6,
    "m": 10**6,
    "billion": 10**9,
    "bn": 10**9,
    "b": 10**9,
}
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_SCALE = "|".join(sorted(SCALES, key=len, reverse=True))
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_DATE = (
    rf"(?P<iso>\d{{4}}-\d{{2}}-\d{{2}})"
    rf"|(?P<dmy>\d{{1,2}}) (?P<dmy_m>{_MONTH})\.? (?P<dmy_y>\d{{4}})"
    rf"|(?P<mdy_m>{_MONTH})\.? (?P<mdy>\d{{1,2}}),? (?P<mdy_y>\d{{4}})"
    rf"|(?P<us_m>\d{{1,2}})/(?P<us>\d{{1,2}})/(?P<us_y>\d{{4}})"
)
_FIGURE = (
    rf"(?P<number>{_NUMBER})(?: ?(?P<scale>{_SCALE})(?![a-z0-9]))?(?P<unit> ?(?:usd|dollars?)\b)?"
)
# what may precede a figure: a sign, a currency mark, an opening parenthesis (a negative figure)
_BEFORE = re.compile(r"(?P<open>\()?(?P<sign>-)?(?P<cur>\$ ?|usd ?)?(?P<sign2>-)?$")
_CONTEXT = frozenset("$-(d")  # a figure is plain unless one of these is just before it
_GLUE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.")  # "type2", "q1", "1.2.3"
_EDGE_AFTER = re.compile(r"(?:\w|-[\d-]|\.\d)")  # after a value; "63-year-old" states 63


class Value(NamedTuple):
    start: int
    end: int
    canonical: str


def money(cents: int) -> str:
    """Canonical money: dollars and cents, ``-1234.56``."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def cents_of(canonical: str) -> int:
    """Integer cents of a canonical money string (exact)."""
    return int(Decimal(canonical) * 100)


def read_values(text: str, phrases: Iterable[str] = ()) -> Iterator[Value]:
    """Every value ``text`` states, left to right, with its canonical form.

    ``text`` is lower-case (the tokenizer's normal form); ``phrases`` are category labels read
    as values (``type 2 diabetes``: its ``2`` is not a number), the longest first. One pass:
    where a phrase, a date and a figure could start at the same place, that is their order."""
    for m in _pattern(frozenset(p.lower() for p in phrases)).finditer(text):
        if m["phrase"]:
            yield Value(m.start(), m.end(), m["phrase"])
        elif m["date"]:
            canonical = _date(m)
            if canonical and not _EDGE_AFTER.match(text, m.end()):
                yield Value(m.start(), m.end(), canonical)
        else:
            figure = _figure(text, m)
            if figure is not None:
                yield figure


@lru_cache(maxsize=16)
def _pattern(phrases: frozenset[str]) -> re.Pattern[str]:
    ordered = sorted(phrases, key=lambda p: (-len(p), p))
    alternatives = "|".join(re.escape(p) for p in ordered)
    phrase = rf"(?<![\w.-])(?:{alternatives})(?![\w-])" if ordered else "(?!)"
    return re.compile(rf"(?P<phrase>{phrase})|(?<![\w.])(?:(?P<date>{_DATE})|{_FIGURE})")


def _date(m: re.Match[str]) -> str | None:
    if m["iso"]:
        y, mo, d = (int(p) for p in m["iso"].split("-"))
    elif m["dmy"]:
        y, mo, d = int(m["dmy_y"]), MONTHS[m["dmy_m"]], int(m["dmy"])
    elif m["mdy"]:
        y, mo, d = int(m["mdy_y"]), MONTHS[m["mdy_m"]], int(m["mdy"])
    else:
        y, mo, d = int(m["us_y"]), int(m["us_m"]), int(m["us"])
    try:
        return date(y, mo, d).isoformat()
    except ValueError:
        return None


def _figure(text: str, m: re.Match[str]) -> Value | None:
    """A number, or money when a currency mark is around it; ``None`` when it is not exact."""
    pre = text[max(0, m.start() - 5) : m.start()]
    before = _BEFORE.search(pre) if _CONTEXT.intersection(pre) else None
    currency = bool(before and before["cur"]) or bool(m["unit"])
    negative = bool(before and (before["sign"] or before["sign2"]))
    closed = text[m.end() : m.end() + 1] == ")"
    if before and before["open"] and closed and currency:
        negative = True  # ($1,200.00): accounting's negative
    start, end = m.start(), m.end() if (m["unit"] or m["scale"]) else m.end("number")
    if _EDGE_AFTER.match(text, end):
        return None
    if start and text[start - 1] == "-":  # a sign written against the digits is its own
        if start > 1 and text[start - 2] in _GLUE:
            return None  # "covid-19": a name, not minus nineteen
        start -= 1
    if not (currency or m["scale"] or negative or "," in m["number"]):
        return Value(start, end, m["number"])  # the common case: a number as written
    digits = m["number"].replace(",", "")
    whole, _, frac = digits.partition(".")
    if currency and not m["scale"] and len(frac) <= 2:  # dollars and cents as written
        zero = not int(whole) and not frac.strip("0")
        return Value(start, end, f"{'-' if negative and not zero else ''}{int(whole)}.{frac:0<2}")
    try:
        amount = Decimal(digits)
    except InvalidOperation:  # pragma: no cover - the pattern only matches digits
        return None
    if m["scale"]:
        if m["scale"] in ("m", "b", "k") and not currency:
            return None  # "3 m" is a distance or a typo, not three million
        amount *= SCALES[m["scale"]]
    if negative:
        amount = -amount
    if currency:
        cents = amount * 100
        if cents != cents.to_integral_value():
            return None  # a fraction of a cent is no money this model computes with
        return Value(start, end, money(int(cents)))
    if m["scale"]:
        return Value(start, end, str(int(amount))) if amount == amount.to_integral() else None
    return Value(start, end, ("-" if negative else "") + m["number"].replace(",", ""))


# --- writing: a canonical value in a surface format ---------------------------------------

Format = Callable[[str], str | None]  # canonical -> as written, or None when it cannot be exact


def grouped(number: str) -> str:
    """``1234567.5`` -> ``1,234,567.5`` (the sign kept in front)."""
    sign, body = ("-", number[1:]) if number.startswith("-") else ("", number)
    whole, dot, frac = body.partition(".")
    return f"{sign}{int(whole):,}{dot}{frac}"


def _scaled(canonical: str, scale: int) -> str | None:
    """``1200000.00`` at a million -> ``1.2``; None unless exact and at least one unit."""
    amount = Decimal(canonical)
    if abs(amount) < scale:
        return None
    shown = (amount / scale).normalize()
    if shown * scale != amount or shown.as_tuple().exponent < -3:  # type: ignore[operator]
        return None
    return f"{shown:f}"


def money_formats() -> dict[str, Format]:
    """Surface formats of a canonical money string, by name."""

    def signed(write: Format) -> Format:
        def both(c: str) -> str | None:
            shown = write(c[1:] if c.startswith("-") else c)
            return None if shown is None else f"-{shown}" if c.startswith("-") else shown

        return both

    def scaled(prefix: str, scale: int, suffix: str = "") -> Format:
        def write(c: str) -> str | None:
            shown = _scaled(c, scale)
            return None if shown is None else f"{prefix}{shown}{suffix}"

        return write

    return {
        "plain": lambda c: f"${c}",  # as records have always been written: $-5.00
        "grouped": signed(lambda c: f"${grouped(c)}" if abs(float(c)) >= 1000 else None),
        "usd": signed(lambda c: f"USD {grouped(c)}"),
        "dollars": signed(lambda c: f"{grouped(c)} dollars"),
        "whole": lambda c: f"${grouped(c[:-3])}" if c.endswith(".00") and c[0] != "-" else None,
        "parenthesised": lambda c: f"(${grouped(c[1:])})" if c.startswith("-") else None,
        "million": scaled("$", 10**6, " million"),
        "short_million": scaled("$", 10**6, "M"),
        "usd_million": scaled("USD ", 10**6, " million"),
        "thousand": scaled("$", 10**3, "K"),
    }


def date_formats() -> dict[str, Format]:
    """Surface formats of a canonical ``YYYY-MM-DD`` date, by name."""

    def parts(c: str) -> date:
        return date.fromisoformat(c)

    return {
        "iso": lambda c: c,
        # May has no short name: "1 May 2021" is the long format's, not this one's
        "day_month": lambda c: (
            None
            if parts(c).month == 5
            else f"{parts(c).day} {calendar.month_abbr[parts(c).month]} {c[:4]}"
        ),
        "month_day": lambda c: f"{calendar.month_name[parts(c).month]} {parts(c).day}, {c[:4]}",
        "us_slash": lambda c: f"{parts(c).month:02d}/{parts(c).day:02d}/{c[:4]}",
        "long_day_month": lambda c: f"{parts(c).day} {calendar.month_name[parts(c).month]} {c[:4]}",
    }


def number_formats() -> dict[str, Format]:
    """Surface formats of a canonical plain number, by name."""
    return {"plain": lambda c: c, "grouped": grouped}


def canonical_of(written: str) -> list[str]:
    """The canonical values a piece of text states (what a render check compares)."""
    return [v.canonical for v in read_values(written.lower())]
