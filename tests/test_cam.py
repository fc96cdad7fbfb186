"""Class activation maps (Zhou et al. 2016).

- The definition: ``M[n] = sum_k weights[c_n, k] * features[n, k]``, one class for all
  samples or one per sample; the spatial mean of a raw map is the class score (less the
  bias) that global average pooling and the classifier give.
- Resizing: bilinear with half-pixel centres, equal to PyTorch's
  ``interpolate(mode="bilinear", align_corners=False)`` when torch is importable.
- Normalisation per map to [0, 1], constant and NaN maps; agreement with the reference.
- Error cases.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import poolkit
from poolkit import reference
from poolkit._cam import resize_bilinear
from _strategies import dtypes, seeds


def _data(n=3, k=4, h=5, w=6, classes=7, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, k, h, w)).astype(dtype),
            rng.standard_normal((classes, k)).astype(dtype))


def test_raw_map_is_the_weighted_sum_and_explains_the_score():
    f, w = _data()
    bias = np.arange(7.0)
    c = np.array([0, 6, 3])
    cam = poolkit.class_activation_map(f, w, c)
    np.testing.assert_allclose(cam, np.einsum("nk,nkhw->nhw", w[c], f), rtol=1e-12)
    scores = poolkit.global_avg_pool2d(f) @ w.T + bias
    np.testing.assert_allclose(cam.mean(axis=(1, 2)) + bias[c], scores[np.arange(3), c],
                               rtol=1e-12)
    # one int for every sample
    np.testing.assert_allclose(poolkit.class_activation_map(f, w, 2),
                               np.einsum("k,nkhw->nhw", w[2], f), rtol=1e-12)
    # 3-D features give one 2-D map
    np.testing.assert_allclose(poolkit.class_activation_map(f[1], w, 6), cam[1], rtol=1e-12)


@given(n=st.integers(1, 3), k=st.integers(1, 4), h=st.integers(1, 5), w=st.integers(1, 5),
       size=st.one_of(st.none(), st.integers(1, 9), st.tuples(st.integers(1, 9),
                                                              st.integers(1, 9))),
       normalize=st.sampled_from([None, True, False]), per_sample=st.booleans(),
       dtype=dtypes, seed=seeds)
@settings(max_examples=40)
def test_matches_reference(n, k, h, w, size, normalize, per_sample, dtype, seed):
    f, wt = _data(n, k, h, w, 3, dtype, seed % 1000)
    c = np.random.default_rng(seed).integers(0, 3, n) if per_sample else 1
    got = poolkit.class_activation_map(f, wt, c, size, normalize=normalize)
    want = reference.class_activation_map(f, wt, c, size, normalize=normalize)
    out_hw = (h, w) if size is None else ((size, size) if isinstance(size, int) else size)
    assert got.shape == want.shape == (n,) + tuple(out_hw)
    assert got.dtype == dtype and got.flags.c_contiguous
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    if size is not None and normalize is not False or normalize:
        assert got.min() >= 0 and got.max() <= 1


def test_normalisation():
    f, w = _data(n=2, h=3, w=4)
    cam = poolkit.class_activation_map(f, w, 0, normalize=True)
    np.testing.assert_allclose(cam.min(axis=(1, 2)), 0)
    np.testing.assert_allclose(cam.max(axis=(1, 2)), 1)
    raw = poolkit.class_activation_map(f, w, 0)
    lo, hi = raw.min(axis=(1, 2), keepdims=True), raw.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(cam, (raw - lo) / (hi - lo), rtol=1e-12)
    # size given: resized, then normalised by default; normalize=False keeps the raw scale
    big = poolkit.class_activation_map(f, w, 0, size=(9, 8))
    assert big.shape == (2, 9, 8) and big.min() == 0 and big.max() == 1
    raw_big = poolkit.class_activation_map(f, w, 0, size=(9, 8), normalize=False)
    np.testing.assert_allclose(raw_big, resize_bilinear(raw, (9, 8)), rtol=1e-12)
    # constant map -> 0, NaN map -> NaN
    f2 = np.ones((2, 1, 3, 3))
    f2[1, 0, 1, 1] = np.nan
    cam2 = poolkit.class_activation_map(f2, np.ones((1, 1)), 0, size=5)
    np.testing.assert_array_equal(cam2[0], 0.0)
    assert np.isnan(cam2[1]).all()


def test_dtypes():
    f, w = _data(dtype=np.float32)
    assert poolkit.class_activation_map(f, w, 0).dtype == np.float32
    assert poolkit.class_activation_map(f, w, 0, size=8).dtype == np.float32
    assert poolkit.class_activation_map(f, w.astype(np.float64), 0).dtype == np.float64
    fb = f.astype(f.dtype.newbyteorder(">"))
    np.testing.assert_allclose(poolkit.class_activation_map(fb, w, 1),
                               poolkit.class_activation_map(f, w, 1), rtol=1e-6)


@pytest.mark.parametrize("size", [(10, 14), (3, 3), (5, 6), (17, 4), (1, 1), (2, 9), 12])
def test_resize_matches_torch(size):
    torch = pytest.importorskip("torch")
    m = np.random.default_rng(1).standard_normal((3, 5, 6))
    want = torch.nn.functional.interpolate(torch.from_numpy(m)[None], size=size,
                                           mode="bilinear", align_corners=False)[0].numpy()
    np.testing.assert_allclose(resize_bilinear(m, size), want, rtol=1e-12, atol=1e-12)


def test_gap_classifier_example():
    # the README example: features -> GAP -> linear classifier -> CAM of the predicted class
    rng = np.random.default_rng(0)
    features = rng.random((2, 8, 7, 7)).astype(np.float32)
    features[0, 3, :3, :3] += 5.0  # sample 0: channel 3 fires in the top-left corner
    weights = rng.standard_normal((10, 8)).astype(np.float32)
    weights[4, 3] = 10.0           # class 4 reads channel 3
    scores = poolkit.global_avg_pool2d(features) @ weights.T
    pred = scores.argmax(axis=1)
    assert pred[0] == 4
    cams = poolkit.class_activation_map(features, weights, pred, size=(224, 224))
    assert cams.shape == (2, 224, 224) and cams.dtype == np.float32
    peak = np.unravel_index(cams[0].argmax(), cams[0].shape)
    assert peak[0] < 96 and peak[1] < 96  # the top-left corner lights up


def test_errors():
    f, w = _data()
    with pytest.raises(ValueError, match=r"\[0, 7\)"):
        poolkit.class_activation_map(f, w, 7)
    with pytest.raises(ValueError, match=r"\[0, 7\)"):
        poolkit.class_activation_map(f, w, [0, -1, 2])
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        poolkit.class_activation_map(f, w, [0, 1])
    with pytest.raises(ValueError, match="single int"):
        poolkit.class_activation_map(f[0], w, [0])
    for bad in (1.0, True, "1", [0.0, 1.0, 2.0]):
        with pytest.raises(TypeError, match="class_index"):
            poolkit.class_activation_map(f, w, bad)
    with pytest.raises(ValueError, match="K = 4"):
        poolkit.class_activation_map(f, w[:, :3], 0)
    with pytest.raises(ValueError, match="2-D"):
        poolkit.class_activation_map(f, w[0], 0)
    with pytest.raises(ValueError, match="4-D"):
        poolkit.class_activation_map(f[0, 0], w, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        poolkit.class_activation_map(f.astype(int), w, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        poolkit.class_activation_map(f, w.astype(np.float16), 0)
    for bad in (0, (3, 0)):
        with pytest.raises(ValueError, match="size"):
            poolkit.class_activation_map(f, w, 0, size=bad)
    with pytest.raises(TypeError, match="size"):
        poolkit.class_activation_map(f, w, 0, size=2.5)
    with pytest.raises(TypeError, match="normalize"):
        poolkit.class_activation_map(f, w, 0, normalize=1)
    with pytest.raises(ValueError, match="h > 0"):
        poolkit.class_activation_map(np.zeros((1, 4, 0, 3)), w, 0)
