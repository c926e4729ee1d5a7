"""Exact integrals of PCHIP interpolants of many curves at once.

The interpolant is the monotone piecewise cubic Hermite of Fritsch and Carlson
as scipy's ``PchipInterpolator`` builds it: at an interior point the slope is
the weighted harmonic mean of the neighbouring secant slopes (zero where they
differ in sign or one is zero), at the ends the one-sided three-point formula
clipped to keep the shape. Each cubic piece is integrated in closed form, so
no interpolator object is built per curve: a report's per-image BD values over
thousands of curves cost a few array operations. The results agree with
``PchipInterpolator(x, y).integrate(lower, upper)`` to rounding (tested).
"""

from __future__ import annotations

import numpy as np


def _edge_slopes(h0: np.ndarray, h1: np.ndarray, m0: np.ndarray, m1: np.ndarray) -> np.ndarray:
    """End-point slopes: one-sided three-point estimate, zeroed or limited to 3·m0 to preserve shape."""
    d = ((2.0 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    opposite = np.sign(d) != np.sign(m0)
    overshoot = (np.sign(m0) != np.sign(m1)) & (np.abs(d) > 3.0 * np.abs(m0))
    return np.where(opposite, 0.0, np.where(overshoot, 3.0 * m0, d))


def slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """PCHIP derivatives at the knots of each row: ``x`` strictly increasing, shape (curves, points ≥ 3)."""
    h = np.diff(x, axis=1)
    secant = np.diff(y, axis=1) / h
    sign = np.sign(secant)
    flat = (sign[:, 1:] != sign[:, :-1]) | (secant[:, 1:] == 0) | (secant[:, :-1] == 0)
    w1 = 2.0 * h[:, 1:] + h[:, :-1]
    w2 = h[:, 1:] + 2.0 * h[:, :-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = (w1 / secant[:, :-1] + w2 / secant[:, 1:]) / (w1 + w2)
        interior = np.where(flat, 0.0, 1.0 / harmonic)
    first = _edge_slopes(h[:, 0], h[:, 1], secant[:, 0], secant[:, 1])
    last = _edge_slopes(h[:, -1], h[:, -2], secant[:, -1], secant[:, -2])
    return np.column_stack([first, interior, last])


def _piece_integrals(y0, y1, d0, d1, h, t):
    """∫ of the Hermite piece from its left knot over the fraction ``t`` ∈ [0, 1] of its width ``h``."""
    t2, t3, t4 = t * t, t * t * t, t * t * t * t
    return h * (y0 * (t4 / 2 - t3 + t) + h * d0 * (t4 / 4 - 2 * t3 / 3 + t2 / 2)
                + y1 * (t3 - t4 / 2) + h * d1 * (t4 / 4 - t3 / 3))


def integrals(x: np.ndarray, y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """∫ from ``lower`` to ``upper`` of each row's PCHIP interpolant (bounds inside the row's knot range).

    ``x`` and ``y`` have shape (curves, points ≥ 3), ``x`` strictly increasing
    along each row; ``lower`` and ``upper`` have shape (curves,).
    """
    d = slopes(x, y)
    h = np.diff(x, axis=1)
    whole = _piece_integrals(y[:, :-1], y[:, 1:], d[:, :-1], d[:, 1:], h, 1.0)
    before = np.concatenate([np.zeros((len(x), 1)), np.cumsum(whole, axis=1)], axis=1)  # ∫ from x0 to each knot
    rows = np.arange(len(x))

    def antiderivative(value: np.ndarray) -> np.ndarray:
        piece = np.clip((x <= value[:, None]).sum(axis=1) - 1, 0, x.shape[1] - 2)
        width = h[rows, piece]
        fraction = (value - x[rows, piece]) / width
        partial = _piece_integrals(y[rows, piece], y[rows, piece + 1], d[rows, piece], d[rows, piece + 1], width,
                                   fraction)
        return before[rows, piece] + partial

    return antiderivative(np.asarray(upper, float)) - antiderivative(np.asarray(lower, float))
