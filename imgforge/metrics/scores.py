"""Feature-based scores: FID, KID, Inception Score, precision/recall, Parzen-window log-likelihood.

All functions take features as numpy arrays or tensors ``(N, D)`` and return plain Python numbers / dicts. They
follow the reference implementations exactly where one exists (torch-fidelity 0.4.0 / pytorch-fid 0.3.0; see
``../shared/compat/metrics/FACTS.md`` for the facts this code reproduces):

* **FID** (Heusel et al. 2017): ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))`` with ``mu`` the mean and
  ``S`` the ``ddof=1`` covariance, in float64. The square-root term ``tr((S1 S2)^(1/2))`` (:data:`FID_METHODS`):

  - ``"eigvals"``: torch-fidelity 0.4.0 verbatim, ``sum(sqrt(eigvals(S1 @ S2).astype(complex128)).real)``
    (~1.6 s at D = 2048 on 2 cores; bit-identical with the compat fixture);
  - ``"sqrtm"``: pytorch-fid / clean-fid verbatim: ``scipy.linalg.sqrtm(S1 @ S2)``, on non-finite entries retry with
    ``1e-6 * I`` added to both covariances, refuse a complex result whose diagonal imaginary part exceeds 1e-3, else
    keep the real part (~16 s at D = 2048 here);
  - ``"lowrank"``: exact when a covariance is rank-deficient (fewer samples than dimensions): with ``X1, X2`` the
    centred features, the non-zero eigenvalues of ``S1 S2`` are the squared singular values of
    ``X1 X2^T / sqrt((n1 - 1)(n2 - 1))``, so the term is the sum of those singular values. The eigen routes above
    add the square roots of ~D round-off eigenvalues instead of zeros: on the 48-image fixture (rank 47 in 2048
    dimensions) that inflates the term by 2.5e-6 and gives FID(A, A) = -2.5e-6 instead of 0;
  - ``"auto"`` (default): ``"lowrank"`` when features are given and a set has no more samples than dimensions,
    else ``"eigvals"``.
* **KID** (Binkowski et al. 2018): unbiased MMD^2 with ``k(x, y) = (x.y / D + 1)^3`` on ``subsets`` random subsets
  of ``subset_size``, drawn as torch-fidelity does: one ``np.random.RandomState(seed)``, per subset
  ``choice(n1, m, replace=False)`` for set 1 then the same for set 2; float32 arithmetic; mean and ``np.std``.
* **IS** (Salimans et al. 2016): rows shuffled by ``RandomState(seed).permutation(N)``, float64 softmax, split i =
  rows ``[i N // s, (i + 1) N // s)``, ``exp(mean KL(p(y|x) || p(y)))`` per split; mean and ``np.std``.
* **Precision / recall** (Kynkaenniemi et al. 2019): each set's manifold is the union of balls around its points
  with radius = distance to the k-th nearest other point of the same set (k = 3); precision = share of fake points
  inside the real manifold, recall = share of real points inside the fake manifold.
* **Parzen** (Goodfellow et al. 2014, after Breuleux et al. 2011): an isotropic Gaussian kernel density on the
  generated samples; ``log p(x) = logsumexp_i(-|x - s_i|^2 / (2 sigma^2)) - log N - D/2 log(2 pi sigma^2)``;
  sigma chosen on a validation set by grid search (default ``logspace(-1, 0, 10)`` as the paper's code), mean over
  the test set reported with its standard error ``std / sqrt(M)``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..errors import InputError, UsageError
from ..progress import ProgressEvent, ProgressFn, emit

ArrayLike = Union[np.ndarray, torch.Tensor]
FID_METHODS = ("auto", "eigvals", "sqrtm", "lowrank")


def _np(x: ArrayLike, dtype: Any = None) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim != 2:
        raise InputError(f"features must be (N, D), got shape {a.shape}")
    return a.astype(dtype) if dtype is not None else a


def _need(n: int, k: int, what: str) -> None:
    if n < k:
        raise InputError(f"{what} needs at least {k} images, got {n}")


# ---- FID ----------------------------------------------------------------------------------------------------------


def feature_stats(features: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
    """``(mu (D,), sigma (D, D))`` float64; sigma is ``np.cov(rowvar=False)`` (ddof 1)."""
    f = _np(features, np.float64)
    _need(len(f), 2, "FID statistics")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrt_trace_eigvals(s1: np.ndarray, s2: np.ndarray) -> float:
    return float(np.sum(np.sqrt(np.linalg.eigvals(s1.dot(s2)).astype(np.complex128)).real))


def _sqrt_trace_lowrank(f1: np.ndarray, f2: np.ndarray) -> float:
    a = f1 - f1.mean(axis=0)
    b = f2 - f2.mean(axis=0)
    sv = np.linalg.svd(a @ b.T, compute_uv=False)
    return float(sv.sum() / math.sqrt((len(a) - 1) * (len(b) - 1)))


def _sqrt_trace_sqrtm(s1: np.ndarray, s2: np.ndarray, eps: float = 1e-6) -> float:
    try:
        from scipy import linalg
    except ImportError:
        raise UsageError("--fid-method sqrtm needs scipy (pip install scipy); the default route does not") from None

    covmean = linalg.sqrtm(s1.dot(s2))
    if isinstance(covmean, tuple):  # old scipy with disp=False semantics
        covmean = covmean[0]
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            m = np.max(np.abs(covmean.imag))
            raise InputError(f"FID: the covariance product's square root has imaginary component {m:.3g}")
        covmean = covmean.real
    return float(np.trace(covmean))


def fid_from_stats(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike,
                   method: str = "auto", _features: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> Dict[str, Any]:
    """FID of two sets of statistics; ``{"value", "mu_diff_sq", "trace1", "trace2", "sqrt_trace", "method"}``."""
    if method == "lowrank" and _features is None:
        raise UsageError("the lowrank FID route needs the features, not only their statistics")
    if method not in FID_METHODS:
        raise UsageError(f"FID method must be one of {FID_METHODS}, got {method!r}")
    m1, m2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if m1.shape != m2.shape or s1.shape != s2.shape or s1.shape != (m1.shape[0], m1.shape[0]):
        raise InputError(f"FID: statistics do not match (mu {m1.shape} vs {m2.shape}, sigma {s1.shape} vs "
                         f"{s2.shape}); were they computed with the same extractor?")
    diff = m1 - m2
    if method == "auto":
        d = m1.shape[0]
        method = "lowrank" if _features is not None and min(len(_features[0]), len(_features[1])) <= d else "eigvals"
    if method == "lowrank":
        st = _sqrt_trace_lowrank(*_features)  # type: ignore[misc]
    elif method == "sqrtm":
        st = _sqrt_trace_sqrtm(s1, s2)
    else:
        st = _sqrt_trace_eigvals(s1, s2)
    terms: Dict[str, Any] = {"mu_diff_sq": float(diff.dot(diff)), "trace1": float(np.trace(s1)), "trace2": float(np.trace(s2)),
             "sqrt_trace": st}
    terms["value"] = terms["mu_diff_sq"] + terms["trace1"] + terms["trace2"] - 2.0 * st
    terms["method"] = method
    return terms


def fid_terms(features1: ArrayLike, features2: ArrayLike, method: str = "auto") -> Dict[str, Any]:
    """:func:`fid_from_stats` of two feature sets (the ``lowrank`` route available)."""
    f1, f2 = _np(features1, np.float64), _np(features2, np.float64)
    mu1, s1 = feature_stats(f1)
    mu2, s2 = feature_stats(f2)
    return fid_from_stats(mu1, s1, mu2, s2, method, _features=(f1, f2))


def fid(features1: ArrayLike, features2: ArrayLike, method: str = "auto") -> float:
    """FID between two feature sets ``(N1, D)``, ``(N2, D)`` (see the module docstring for ``method``)."""
    return float(fid_terms(features1, features2, method)["value"])


# ---- KID ----------------------------------------------------------------------------------------------------------


def mmd2_unbiased(f1: np.ndarray, f2: np.ndarray, degree: int = 3, gamma: Optional[float] = None,
                  coef0: float = 1.0) -> float:
    """Unbiased MMD^2 with the polynomial kernel ``(gamma x.y + coef0)^degree`` (gamma default 1/D), in the
    features' dtype (float32 like the reference)."""
    d = f1.shape[1]
    g = 1.0 / d if gamma is None else gamma

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a @ b.T * g + coef0) ** degree

    kxx, kyy, kxy = k(f1, f1), k(f2, f2), k(f1, f2)
    m = kxx.shape[0]
    kt_xx = (kxx.sum(axis=1) - np.diagonal(kxx)).sum()
    kt_yy = (kyy.sum(axis=1) - np.diagonal(kyy)).sum()
    kxy_sum = kxy.sum(axis=0).sum()
    return float((kt_xx + kt_yy) / (m * (m - 1)) - 2 * kxy_sum / (m * m))


def kid(features1: ArrayLike, features2: ArrayLike, subsets: int = 100, subset_size: int = 1000, seed: int = 2020,
        progress: Optional[ProgressFn] = None, return_subsets: bool = False) -> Dict[str, Any]:
    """KID ``{"value", "std", "subsets", "subset_size", "seed"}`` (+ ``"mmd"`` per subset with ``return_subsets``).

    Raises InputError when either set has fewer than ``subset_size`` samples (as the reference does)."""
    f1, f2 = _np(features1, np.float32), _np(features2, np.float32)
    if subsets < 1 or subset_size < 2:
        raise UsageError("KID needs --subsets >= 1 and --subset-size >= 2")
    if len(f1) < subset_size or len(f2) < subset_size:
        raise InputError(f"KID --subset-size {subset_size} is larger than a set ({len(f1)} and {len(f2)} samples); "
                         "use a smaller --subset-size")
    rng = np.random.RandomState(seed)
    mmds = np.zeros(subsets)
    for i in range(subsets):
        a = f1[rng.choice(len(f1), subset_size, replace=False)]
        b = f2[rng.choice(len(f2), subset_size, replace=False)]
        mmds[i] = mmd2_unbiased(a, b)
        emit(progress, ProgressEvent(task="KID subsets", step=i + 1, total=subsets))
    out: Dict[str, Any] = {"value": float(np.mean(mmds)), "std": float(np.std(mmds)), "subsets": subsets,
                           "subset_size": subset_size, "seed": seed}
    if return_subsets:
        out["mmd"] = mmds
    return out


# ---- Inception Score --------------------------------------------------------------------------------------------


def inception_score(logits: ArrayLike, splits: int = 10, seed: int = 2020, shuffle: bool = True) -> Dict[str, Any]:
    """IS from (unbiased) logits ``(N, C)``: ``{"value", "std", "splits", "seed"}``."""
    x = torch.as_tensor(_np(logits)).double()
    n = x.shape[0]
    if splits < 1:
        raise UsageError("--splits must be >= 1")
    _need(n, splits, f"IS with {splits} splits")
    if shuffle:
        x = x[torch.from_numpy(np.random.RandomState(seed).permutation(n))]
    p, log_p = x.softmax(dim=1), x.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        sl = slice(i * n // splits, (i + 1) * n // splits)
        pc, lpc = p[sl], log_p[sl]
        q = pc.mean(dim=0, keepdim=True)
        scores.append((pc * (lpc - q.log())).sum(dim=1).mean().exp().item())
    return {"value": float(np.mean(scores)), "std": float(np.std(scores)), "splits": splits, "seed": seed}


def inception_score_from_probs(probs: ArrayLike, splits: int = 1, seed: int = 2020) -> Dict[str, Any]:
    """IS from class probabilities (e.g. the digit classifier's softmax): logits = log(probs)."""
    p = torch.as_tensor(_np(probs)).double().clamp_min(1e-30)
    return inception_score(p.log(), splits=splits, seed=seed)


# ---- precision / recall -------------------------------------------------------------------------------------------


def _kth_radii(f: torch.Tensor, k: int, batch: int) -> torch.Tensor:
    out = []
    for i in range(0, len(f), batch):
        d = torch.cdist(f[i:i + batch], f)
        out.append(d.kthvalue(k + 1, dim=1).values)  # the smallest is the point itself (0)
    return torch.cat(out)


def _coverage(query: torch.Tensor, ref: torch.Tensor, radii: torch.Tensor, batch: int) -> float:
    inside = []
    for i in range(0, len(query), batch):
        d = torch.cdist(query[i:i + batch], ref)
        inside.append((d <= radii[None]).any(dim=1))
    return float(torch.cat(inside).double().mean())


def precision_recall(real: ArrayLike, fake: ArrayLike, k: int = 3, batch: int = 1000) -> Dict[str, Any]:
    """Kynkaenniemi et al. improved precision and recall: ``{"precision", "recall", "k"}``."""
    r, f = torch.as_tensor(_np(real, np.float64)), torch.as_tensor(_np(fake, np.float64))
    _need(min(len(r), len(f)), k + 1, f"precision/recall with k={k}")
    rr, fr = _kth_radii(r, k, batch), _kth_radii(f, k, batch)
    return {"precision": _coverage(f, r, rr, batch), "recall": _coverage(r, f, fr, batch), "k": k}


# ---- Parzen window -----------------------------------------------------------------------------------------------


def parzen_log_likelihood(samples: ArrayLike, points: ArrayLike, sigma: float, batch: int = 100) -> np.ndarray:
    """Per-point log-likelihood ``(M,)`` of ``points`` under the Gaussian Parzen window on ``samples`` (float64)."""
    s = torch.as_tensor(_np(samples, np.float64))
    x = torch.as_tensor(_np(points, np.float64))
    if s.shape[1] != x.shape[1]:
        raise InputError(f"Parzen: samples have {s.shape[1]} values each, points {x.shape[1]}")
    n, d = s.shape
    s_sq = (s * s).sum(1)
    out = []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        d2 = ((xb * xb).sum(1)[:, None] + s_sq[None] - 2 * xb @ s.T).clamp_min(0)
        out.append(torch.logsumexp(-d2 / (2 * sigma**2), dim=1))
    lse = torch.cat(out).numpy()
    return lse - math.log(n) - d / 2 * math.log(2 * math.pi * sigma**2)


def parzen(samples: ArrayLike, valid: ArrayLike, test: ArrayLike, sigmas: Optional[Sequence[float]] = None,
           progress: Optional[ProgressFn] = None) -> Dict[str, Any]:
    """Goodfellow et al. 2014 Parzen estimate: sigma maximising the mean validation log-likelihood over the grid,
    then ``{"value": mean test LL, "std": standard error, "sigma", "valid_ll", "grid"}``."""
    grid = [float(v) for v in (np.logspace(-1, 0, 10) if sigmas is None else sigmas)]
    _need(len(_np(samples)), 1, "Parzen")
    valid_ll = []
    for i, sg in enumerate(grid):
        valid_ll.append(float(parzen_log_likelihood(samples, valid, sg).mean()))
        emit(progress, ProgressEvent(task="Parzen sigma search", step=i + 1, total=len(grid)))
    best = grid[int(np.argmax(valid_ll))]
    ll = parzen_log_likelihood(samples, test, best)
    se = float(ll.std() / math.sqrt(len(ll))) if len(ll) > 1 else float("nan")
    return {"value": float(ll.mean()), "std": se, "sigma": best, "valid_ll": valid_ll, "grid": grid,
            "n_samples": int(len(_np(samples))), "n_valid": int(len(_np(valid))), "n_test": int(len(ll))}
