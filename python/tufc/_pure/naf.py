"""Width-w non-adjacent form of a scalar, for the curve code's multiplications."""

from __future__ import annotations


def naf(scalar: int, width: int = 5) -> list:
    """Signed digits of ``scalar``, least significant first (public data only)."""
    digits = []
    half = 1 << (width - 1)
    full = 1 << width
    while scalar:
        if scalar & 1:
            digit = scalar & (full - 1)
            if digit >= half:
                digit -= full
            scalar -= digit
        else:
            digit = 0
        digits.append(digit)
        scalar >>= 1
    return digits
