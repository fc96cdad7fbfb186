"""Class activation maps (Zhou et al. 2016) from the features that feed global average pooling."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._arrays import FLOAT_TYPES
from ._params import _MAX_DIM, pair
from ._pooling import FloatArray, IntOrPair

__all__ = ["class_activation_map", "resize_bilinear"]


def _float_array(a, name: str, ndims: tuple) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.type not in FLOAT_TYPES:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {a.dtype}; convert it explicitly "
            f"(poolkit never casts silently)"
        )
    if a.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {want}, got {a.ndim}-D with shape {a.shape}")
    return a


def _axis_weights(n_in: int, n_out: int):
    """Source rows and weights of bilinear resizing along one axis (half-pixel centres).

    Output ``i`` samples input coordinate ``s = (i + 0.5) * n_in / n_out - 0.5``, clamped
    below at 0: ``a[i0] + t * (a[i1] - a[i0])`` with ``i0 = floor(s)``, ``i1 = min(i0 + 1,
    n_in - 1)``, ``t = s - i0``.
    """
    s = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    s = np.maximum(s, 0.0)
    i0 = np.minimum(s.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    t = s - i0
    return i0, i1, t


def resize_bilinear(maps: npt.ArrayLike, size: IntOrPair) -> np.ndarray:
    """Resize the last two axes of ``maps`` to ``size`` by bilinear interpolation.

    The convention of PyTorch's ``interpolate(mode="bilinear", align_corners=False)``, OpenCV's
    ``INTER_LINEAR`` and scikit-image's ``resize(order=1, anti_aliasing=False)``: pixel centres
    at half-integers, output pixel ``i`` samples input coordinate ``(i + 0.5) * in / out - 0.5``
    (clamped at 0), and coordinates past the last pixel repeat it. No anti-aliasing when
    shrinking. Computed in float64, returned in the input's dtype.

    >>> import numpy as np
    >>> resize_bilinear(np.array([[0.0, 1.0]]), (1, 4))
    array([[0.  , 0.25, 0.75, 1.  ]])
    """
    maps = np.asarray(maps)
    out_h, out_w = _check_size(size)
    h, w = maps.shape[-2:]
    # The result first: a size no memory can hold fails here, at once, instead of after
    # gigabytes of weights and rows (a (3, 2**25, 2**25) request took 10 s to fail).
    out = np.empty(maps.shape[:-2] + (out_h, out_w), dtype=np.float64)
    m = maps.astype(np.float64, copy=False)
    r0, r1, tr = _axis_weights(h, out_h)
    c0, c1, tc = _axis_weights(w, out_w)
    rows = _lerp(m[..., r0, :], m[..., r1, :], tr[:, None])
    out[...] = _lerp(rows[..., c0], rows[..., c1], tc)
    return out.astype(maps.dtype, copy=False)


def _lerp(a, b, t):
    """``a + t * (b - a)``, exactly ``a`` where ``a == b`` (so a constant map stays constant,
    bit for bit, and infinities survive)."""
    with np.errstate(invalid="ignore"):
        return np.where(a == b, a, a + t * (b - a))


def _check_size(size) -> tuple:
    hw = pair(size, "size")
    for v in hw:
        if v < 1:
            raise ValueError(f"size must be >= 1 along H and W, got size={size!r}")
        if v > _MAX_DIM:
            raise ValueError(f"size must be at most {_MAX_DIM}, got size={size!r}")
    return hw


def _normalize(maps: np.ndarray) -> np.ndarray:
    """Min-max normalise each map (last two axes) to [0, 1]; a constant map becomes 0."""
    lo = maps.min(axis=(-2, -1), keepdims=True)
    hi = maps.max(axis=(-2, -1), keepdims=True)
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (maps - lo) / np.where(span > 0, span, 1.0)
    return np.where(span > 0, out, np.where(np.isnan(span), np.nan, 0.0))


def class_activation_map(features: npt.ArrayLike, weights: npt.ArrayLike,
                         class_index: int | npt.ArrayLike, size: IntOrPair | None = None, *,
                         normalize: bool | None = None) -> FloatArray:
    """Class activation maps (Zhou et al. 2016, "Learning Deep Features for Discriminative
    Localization").

    For a network ending in ``features -> global average pooling -> linear classifier``, the
    map of class ``c`` for sample ``n`` is ``M[n] = sum_k weights[c, k] * features[n, k]``,
    whose spatial mean is the class score less the bias (the bias, constant over the map,
    does not enter).

    Parameters
    ----------
    features : ndarray of shape (N, K, h, w) or (K, h, w), dtype float32 or float64
        The last convolutional feature maps (the input of global average pooling).
    weights : ndarray of shape (classes, K), dtype float32 or float64
        The linear classifier's weight matrix (``scores = gap(features) @ weights.T + bias``).
    class_index : int or array of int of shape (N,)
        The class to map: one for every sample, or one per sample. Must lie in
        ``[0, classes)``; a 3-D ``features`` takes a single int.
    size : int or (int, int), optional
        Resize each map to ``(H, W)`` (typically the input image's size) by bilinear
        interpolation with half-pixel centres (:func:`resize_bilinear`: PyTorch's
        ``align_corners=False``, OpenCV's ``INTER_LINEAR``).
    normalize : bool, optional
        Min-max normalise each map to [0, 1] after any resizing: ``(M - min M) / (max M -
        min M)`` per sample; a constant map becomes all 0, a map holding a NaN all NaN
        (infinities follow IEEE arithmetic). Default (None): normalise exactly when ``size``
        is given, so
        ``size=None`` returns the raw maps above and ``size=(H, W)`` maps ready to overlay.

    Returns
    -------
    ndarray of shape (N, h, w), (N, H, W) with ``size``, or without N for 3-D features
        dtype ``numpy.result_type(features, weights)``; computed in that dtype (the weighted
        sum through ``numpy.matmul``), resized and normalised in float64.

    Raises
    ------
    TypeError
        For non-float features or weights, or a non-integer ``class_index``.
    ValueError
        For shapes that disagree, a class index outside ``[0, classes)``, or a size < 1.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> f = np.zeros((1, 2, 2, 2)); f[0, 0, 0, 0] = 4.0; f[0, 1, 1, 1] = 4.0
    >>> w = np.array([[1.0, -1.0], [0.0, 1.0]])
    >>> poolkit.class_activation_map(f, w, 0)
    array([[[ 4.,  0.],
            [ 0., -4.]]])
    >>> poolkit.class_activation_map(f, w, [1], size=4)
    array([[[0.    , 0.    , 0.    , 0.    ],
            [0.    , 0.0625, 0.1875, 0.25  ],
            [0.    , 0.1875, 0.5625, 0.75  ],
            [0.    , 0.25  , 0.75  , 1.    ]]])
    """
    f = _float_array(features, "features", (3, 4))
    w = _float_array(weights, "weights", (2,))
    single = f.ndim == 3
    if single:
        f = f[np.newaxis]
    n, k, h, wd = f.shape
    if w.shape[1] != k:
        raise ValueError(
            f"weights must have shape (classes, K) with K = {k} feature channels, got "
            f"{w.shape}"
        )
    if h == 0 or wd == 0:
        raise ValueError(f"features must have h > 0 and w > 0, got shape {np.shape(features)}")
    classes = _class_indices(class_index, n, w.shape[0], single)
    if normalize is None:
        normalize = size is not None
    elif not isinstance(normalize, (bool, np.bool_)):
        raise TypeError(f"normalize must be None or a bool, got {normalize!r}")
    out_hw = None if size is None else _check_size(size)

    dtype = np.result_type(f.dtype, w.dtype).newbyteorder("=")
    wc = w[classes].astype(dtype, copy=False)                      # (N, K)
    fl = f.astype(dtype, copy=False).reshape(n, k, h * wd)        # (N, K, h*w)
    maps = np.matmul(wc[:, np.newaxis, :], fl)[:, 0].reshape(n, h, wd)
    if out_hw is not None:
        maps = resize_bilinear(maps.astype(np.float64), out_hw)
    if normalize:
        maps = _normalize(maps.astype(np.float64, copy=False))
    maps = np.ascontiguousarray(maps, dtype=dtype)
    return maps[0] if single else maps


def _class_indices(class_index, n: int, n_classes: int, single: bool) -> np.ndarray:
    if isinstance(class_index, (bool, np.bool_)):
        raise TypeError(f"class_index must be an int or an array of ints, got {class_index!r}")
    c = np.asarray(class_index)
    if c.dtype.kind not in "iu":
        raise TypeError(
            f"class_index must be an int or an array of ints, got {class_index!r} "
            f"(dtype {c.dtype})"
        )
    if c.ndim == 0:
        c = np.full(n, int(c), dtype=np.int64)
    elif single:
        raise ValueError(
            f"class_index must be a single int for 3-D features, got shape {c.shape}"
        )
    elif c.shape != (n,):
        raise ValueError(
            f"class_index must be an int or have shape (N,) = ({n},), got shape {c.shape}"
        )
    if c.size and (c.min() < 0 or c.max() >= n_classes):
        bad = c[(c < 0) | (c >= n_classes)][0]
        raise ValueError(
            f"class_index must lie in [0, {n_classes}) (the rows of weights), got {int(bad)}"
        )
    return c.astype(np.int64, copy=False)
