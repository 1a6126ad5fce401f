"""Pairs of samples the statistics are checked on: random, and adversarial (ties, constant
columns, one-element samples, disjoint supports, values near +-1e300)."""

from __future__ import annotations

import numpy as np


def samples(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(40):
        n1, n2 = (int(n) for n in rng.integers(1, 400, 2))
        cases.append((rng.normal(size=n1), rng.normal(rng.uniform(-1, 1), size=n2)))
    # Adversarial: heavy ties, constant columns, one-element samples, disjoint supports.
    cases += [
        (rng.integers(0, 3, 200).astype(float), rng.integers(0, 4, 150).astype(float)),
        (np.zeros(50), np.zeros(70)),
        (np.zeros(50), np.ones(70)),
        (np.full(30, 2.5), rng.normal(size=40)),
        (np.array([1.0]), np.array([2.0])),
        (np.array([1.0]), np.array([1.0, 1.0, 3.0])),
        (np.arange(10.0), np.arange(10.0) + 100),
        (rng.normal(size=5), rng.normal(size=3)),
        (np.array([-1e300, 0.0, 1e300]), np.array([0.0, 1.0])),
        (rng.normal(size=300), rng.normal(0.2, size=300)),  # equal sizes
        (rng.integers(0, 4, 200).astype(float), rng.integers(0, 4, 200).astype(float)),
    ]
    return cases


CASES = samples(20261128)
