"""The one dollar formatter of the CLI and reports: tiny costs stay readable."""

from __future__ import annotations

import pytest

from podium.studio.console import usd


@pytest.mark.parametrize(
    ("dollars", "text"),
    [
        (0.0, "$0"),
        (5.8e-06, "$0.0000058"),
        (1.234e-4, "$0.00012"),
        (0.0123, "$0.012"),
        (0.5, "$0.50"),
        (1.0, "$1.00"),
        (1234.5, "$1,234.50"),
        (-0.002, "$-0.0020"),
    ],
)
def test_usd_keeps_two_significant_digits_below_a_dollar(dollars, text):
    assert usd(dollars) == text
