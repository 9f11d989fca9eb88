"""Company quarters: sector -> revenue -> costs -> income statement -> equity roll-forward and
balance sheet; debt -> interest -> coverage covenant.

Each company has four consecutive quarterly records (``period`` 0-3). All money is integer
cents, so every identity is exact.

Real relations (cited):
  * Income statement: revenue - COGS = gross profit; gross profit - operating expenses =
    operating income (EBIT); EBIT - interest - income tax = net income.
  * Balance sheet: assets = liabilities + equity; clean-surplus roll-forward: closing equity =
    opening equity + net income - dividends, and a period opens where the last one closed.
  * US federal corporate income tax is a flat 21% (26 U.S.C. §11(b), as amended by the Tax
    Cuts and Jobs Act of 2017).
  * Interest coverage ratio = EBIT / interest expense, a standard maintenance covenant.
Illustrative (invented, not market terms): tax charged each quarter on that quarter's pre-tax
profit (losses give zero tax, no carry-forward), rounded down to the cent; the interest rate
per loan type (interest = liabilities * annual rate / 4, rounded half up to the cent); the
minimum coverage per loan type; the sector margins and every distribution.
"""

from __future__ import annotations

from worldgen.domains.financial.faults import FAULTS
from worldgen.domains.financial.text import COGS, EBIT, GP, OPEX, REV, known_from, renderer
from worldgen.domains.financial.world import build

# Pinned to the stream this domain had when domains were a list, so every published dataset
# digest stays the same; a new domain leaves these out and gets one from its name.
SEED_STREAM = 2
ORDER = 2

__all__ = [
    "COGS",
    "EBIT",
    "FAULTS",
    "GP",
    "OPEX",
    "ORDER",
    "REV",
    "SEED_STREAM",
    "build",
    "known_from",
    "renderer",
]
