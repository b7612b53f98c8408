"""A student's number against the engine's: the quiz's tolerance (and nothing else).

An answer a is right for the value v when |a − v| ≤ ABS_TOL or |a − v| ≤ REL_TOL·|v|: an
entry written with four significant digits (−0.3149 for −0.314925…, 11.26 for 11.2641…) or
four decimals (0.0012 for 0.001234) passes; a sign error, a missing factor f′(z) or a wrong
step does not.
"""

from __future__ import annotations

import math

#: absolute tolerance: numbers near 0 written with four decimals
ABS_TOL = 1e-4
#: relative tolerance: large numbers written with four significant digits
REL_TOL = 1e-3


def is_close(answer: float, value: float) -> bool:
    """Whether answer is value to the quiz's tolerance (a value that overflowed matches nothing)."""
    if not (math.isfinite(answer) and math.isfinite(value)):
        return False
    err = abs(answer - value)
    return err <= ABS_TOL or err <= REL_TOL * abs(value)
