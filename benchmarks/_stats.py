"""Statistics the benchmarks share: the median of per-round figures and its confidence interval.

A benchmark on a shared machine measures in interleaved rounds, so drift hits every variant
alike; one figure per round per variant, then a paired figure per round (a difference or a
ratio). What is reported is the median of those per-round figures with a 95% percentile
bootstrap confidence interval: resample the rounds with replacement, take each resample's
median, and keep the middle 95% of those medians. The generator is seeded, so the same rounds
always give the same interval.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence

BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 20261206
#: Below this many values the interval is little more than the range of the values; ten or
#: more give one worth reading.
MIN_CI_VALUES = 5


def median_ci(values: Sequence[float], *, seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """The median of ``values`` and a 95% bootstrap (percentile) confidence interval.

    Returns ``(median, low, high)``. Deterministic for a given ``seed``. Raises
    ``statistics.StatisticsError`` for no values.
    """
    values = list(values)
    median = statistics.median(values)
    rng = random.Random(seed)
    n = len(values)
    medians = sorted(
        statistics.median(rng.choices(values, k=n)) for _ in range(BOOTSTRAP_RESAMPLES)
    )
    low = medians[int(0.025 * BOOTSTRAP_RESAMPLES)]
    high = medians[int(0.975 * BOOTSTRAP_RESAMPLES) - 1]
    return median, low, high
