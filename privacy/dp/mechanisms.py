"""Noise, through diffprivlib, and the 95% error bounds reported with each value.

Why these mechanisms:
- counts are integers: the two-sided Geometric mechanism (integer-valued, so there is no
  floating-point Laplace sampling for an attacker to exploit);
- sums are turned into integers first (values clamped to declared bounds, rounded to a declared
  resolution, 1/scale) and then get Geometric noise with sensitivity k * max|bound| * scale;
- quantiles use diffprivlib's exponential-mechanism quantile over the declared bounds.
`PrivacyLeakWarning` (diffprivlib's "you did not give bounds" family) is raised as an error.

`random_state` is None in production (diffprivlib's own randomness); tests pass a seeded
numpy RandomState explicitly to make statistical checks reproducible.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from diffprivlib.mechanisms import Geometric
from diffprivlib.tools import quantile as dp_quantile
from diffprivlib.utils import PrivacyLeakWarning

CONFIDENCE = 0.95
MC_DRAWS = 4000


class PrivacyLeakError(RuntimeError):
    """diffprivlib warned that a release would leak privacy; we refuse instead."""


@contextmanager
def strict_privacy() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrivacyLeakWarning)
        try:
            yield
        except PrivacyLeakWarning as exc:
            raise PrivacyLeakError(str(exc)) from exc


def geometric_p(epsilon: float, sensitivity: float) -> float:
    return math.exp(-epsilon / sensitivity)


def geometric_noise(value: int, *, epsilon: float, sensitivity: int, random_state=None) -> int:
    """value + two-sided geometric noise, P(x) proportional to exp(-epsilon |x| / sensitivity)."""
    with strict_privacy():
        mech = Geometric(epsilon=epsilon, sensitivity=int(sensitivity), random_state=random_state)
        return int(mech.randomise(int(value)))


def geometric_std(epsilon: float, sensitivity: float) -> float:
    """Theoretical standard deviation of the two-sided geometric noise: sqrt(2p) / (1 - p)."""
    p = geometric_p(epsilon, sensitivity)
    return math.sqrt(2 * p) / (1 - p)


def geometric_half_width(epsilon: float, sensitivity: float, confidence: float = CONFIDENCE) -> float:
    """Exact 95% half-width of two-sided geometric noise: the least integer t with
    P(|X| > t) = 2 p^(t+1) / (1 + p) <= 1 - confidence. (For large scales this tends to the
    Laplace figure scale * ln 20, scale = sensitivity / epsilon.)"""
    p = geometric_p(epsilon, sensitivity)
    alpha = 1 - confidence
    if p <= 0:
        return 0.0
    t = math.ceil(math.log(alpha * (1 + p) / 2) / math.log(p)) - 1
    return float(max(t, 0))


def laplace_half_width(scale: float, confidence: float = CONFIDENCE) -> float:
    """Half-width of Laplace(scale) noise at the given confidence: scale * ln(1 / alpha)."""
    return scale * math.log(1 / (1 - confidence))


def quantile_noise(
    values: Sequence[float], *, q: float, epsilon: float, bounds: tuple[float, float], random_state=None
):
    """diffprivlib's exponential-mechanism quantile over declared bounds (empty data allowed)."""
    with strict_privacy():
        return float(
            dp_quantile(np.asarray(values, dtype=float), q, epsilon=epsilon, bounds=bounds, random_state=random_state)
        )


def geometric_draws(epsilon: float, sensitivity: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """Samples of the two-sided geometric noise (difference of two geometric variables)."""
    p = geometric_p(epsilon, sensitivity)
    success = 1 - p
    return (rng.geometric(success, size) - rng.geometric(success, size)).astype(float)


def simulated_half_width(
    fn: Callable[..., np.ndarray],
    centres: Sequence[float],
    noises: Sequence[tuple[float, float]],
    *,
    confidence: float = CONFIDENCE,
    draws: int = MC_DRAWS,
) -> float:
    """95% half-width of a derived value (ratio, NPS, mean) by simulating the noise around the
    released noisy inputs. Post-processing only: it reads no data, so it costs no budget."""
    rng = np.random.default_rng()
    samples = [
        np.asarray(c, dtype=float) + geometric_draws(e, s, draws, rng)
        for c, (e, s) in zip(centres, noises, strict=True)
    ]
    base = fn(*[np.asarray([c], dtype=float) for c in centres])[0]
    deviations = np.abs(fn(*samples) - base)
    deviations = deviations[np.isfinite(deviations)]
    if deviations.size == 0:
        return float("nan")
    return float(np.quantile(deviations, confidence))
