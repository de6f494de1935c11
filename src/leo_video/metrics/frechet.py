"""Distribution distances between feature sets: Fréchet distance (FVD) and kernel distance (KVD).

Both take two feature sets ``(N, D)`` — I3D features for FVD/KVD, or any other embedding — as numpy
arrays or torch tensors, and compute in float64 on the CPU.

* **Fréchet distance** (Heusel et al. 2017; FVD when the features are I3D's, Unterthiner et al.
  2018)::

      FD = ||mu_a - mu_b||^2 + Tr(Sigma_a + Sigma_b - 2 (Sigma_a Sigma_b)^(1/2))

  with the matrix square root computed by ``scipy.linalg.sqrtm`` and its real part kept (as
  StyleGAN-V and pytorch-fid do; round-off can leave a tiny imaginary part).
* **Kernel distance** (KVD when the features are I3D's): the unbiased estimate of the squared
  maximum mean discrepancy MMD² with the polynomial kernel ``k(x, y) = (gamma x·y + coef0)^degree``,
  by default ``(x·y / D + 1)^3``, over *all* samples of both sets — no subsets, no x1000 scaling.
  See :func:`kernel_distance` for how this differs from KID as clean-fid / torch-fidelity report it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from ..errors import InputError

__all__ = [
    "as_features",
    "feature_distances",
    "feature_stats",
    "frechet_distance",
    "frechet_distance_from_stats",
    "kernel_distance",
    "polynomial_kernel",
    "to_numpy",
]


def to_numpy(x: Any, dtype: Any = None) -> np.ndarray:
    """A numpy array from a numpy array, torch tensor (any device) or nested list; cast if ``dtype``."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().to("cpu")
        # float64 before numpy: exact for every float dtype, and numpy has no bfloat16.
        x = x.double() if dtype in (np.float64, "float64") or str(x.dtype) == "torch.bfloat16" else x
        x = x.numpy()
    return np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)


def as_features(feats: Any, name: str = "features") -> np.ndarray:
    """Return ``feats`` (numpy array or torch tensor, ``(N, D)``) as a float64 numpy array.

    Raises :class:`InputError` (naming ``name``) on a wrong rank, fewer than 2 samples, or NaN/inf.
    """
    array = to_numpy(feats, np.float64)
    if array.ndim != 2:
        raise InputError(f"{name}: expected features of shape (N, D), got shape {array.shape}")
    if array.shape[0] < 2:
        raise InputError(f"{name}: need at least 2 samples, got {array.shape[0]}")
    if not np.isfinite(array).all():
        raise InputError(f"{name}: features contain NaN or inf")
    return array


def feature_stats(feats: Any, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` of features ``(N, D)``, in float64.

    ``ddof=1`` is numpy's ``np.cov(feats, rowvar=False)`` (the unbiased sample covariance, as
    pytorch-fid uses). StyleGAN-V's ``FeatureStats.get_mean_cov`` uses ``ddof=0``
    (``X^T X / N - mu mu^T``); the two differ by the factor ``N / (N - 1)`` on Sigma, about 0.05%
    at N = 2048 (see docs/EVALUATION.md).
    """
    array = as_features(feats)
    mu = array.mean(axis=0)  # (D,)
    sigma = np.cov(array, rowvar=False, ddof=ddof)  # (D, D)
    return mu, np.atleast_2d(sigma)


def frechet_distance_from_stats(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2); float64.

    ``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrtm(sigma1 @ sigma2))``, real part of ``sqrtm``.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)  # (D,)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise InputError(
            f"statistics: shapes do not match (mu {mu1.shape} vs {mu2.shape}, "
            f"sigma {sigma1.shape} vs {sigma2.shape})"
        )
    mean_term = float(np.square(mu1 - mu2).sum())
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)  # (D, D), possibly complex
    covmean = np.real(covmean)
    if not np.isfinite(covmean).all():
        raise InputError("statistics: the matrix square root of sigma1 @ sigma2 is not finite")
    trace_term = float(np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    return mean_term + trace_term


def frechet_distance(feats_a: Any, feats_b: Any, ddof: int = 1) -> float:
    """Fréchet distance between feature sets ``feats_a (N_a, D)`` and ``feats_b (N_b, D)``.

    FVD when the features are I3D features of videos (see :mod:`leo_video.metrics.i3d`). Means and
    covariances are float64 (:func:`feature_stats` with ``ddof``); the result is a Python float.
    """
    a, b = as_features(feats_a, "feats_a"), as_features(feats_b, "feats_b")
    _check_same_dim(a, b)
    return frechet_distance_from_stats(*feature_stats(a, ddof), *feature_stats(b, ddof))


def polynomial_kernel(
    x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> np.ndarray:
    """Kernel matrix ``(N_x, N_y)`` of ``k(x, y) = (gamma x·y + coef0)^degree``; gamma defaults to 1/D."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * (x @ y.T) + coef0) ** degree


def kernel_distance(
    feats_a: Any,
    feats_b: Any,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> float:
    """Unbiased MMD² between ``feats_a (m, D)`` and ``feats_b (n, D)`` with a polynomial kernel.

    With ``k(x, y) = (gamma x·y + coef0)^degree`` (default ``(x·y / D + 1)^3``)::

        MMD² = sum_{i != j} k(a_i, a_j) / (m (m-1)) + sum_{i != j} k(b_i, b_j) / (n (n-1))
               - 2 sum_{i, j} k(a_i, b_j) / (m n)

    computed once over all samples, in float64, without scaling. This is KVD as video-generation
    papers compute it on I3D features (e.g. the ``polynomial_mmd`` of DIGAN/TATS-style FVD code).

    Difference from KID: clean-fid and torch-fidelity evaluate the *same* kernel and estimator but
    average it over 100 random subsets of 1000 samples each (so the value depends on the RNG and
    on the subset size only through its variance), and papers often print KID x 1000. Our number
    is neither subset-averaged nor scaled; its expectation equals KID's unscaled expectation.
    It can be slightly negative when the two distributions are equal.
    """
    a, b = as_features(feats_a, "feats_a"), as_features(feats_b, "feats_b")
    _check_same_dim(a, b)
    m, n = a.shape[0], b.shape[0]
    k_aa = polynomial_kernel(a, a, degree, gamma, coef0)  # (m, m)
    k_bb = polynomial_kernel(b, b, degree, gamma, coef0)  # (n, n)
    k_ab = polynomial_kernel(a, b, degree, gamma, coef0)  # (m, n)
    # The diagonal k(x_i, x_i) is excluded from the within-set terms: that is what makes it unbiased.
    term_aa = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    term_bb = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    term_ab = k_ab.sum() / (m * n)
    return float(term_aa + term_bb - 2.0 * term_ab)


def feature_distances(real_feats: Any, fake_feats: Any, ddof: int = 1) -> dict[str, float | int]:
    """FVD-style and KVD-style distances of two feature sets, with their sample counts, for reports.

    Returns ``{"frechet": ..., "kernel": ..., "num_real": N_r, "num_fake": N_g, "dim": D}``.
    """
    real, fake = as_features(real_feats, "real features"), as_features(fake_feats, "fake features")
    return {
        "frechet": frechet_distance(real, fake, ddof=ddof),
        "kernel": kernel_distance(real, fake),
        "num_real": int(real.shape[0]),
        "num_fake": int(fake.shape[0]),
        "dim": int(real.shape[1]),
    }


def _check_same_dim(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise InputError(f"feats_b: feature dimension {b.shape[1]} does not match feats_a's {a.shape[1]}")
