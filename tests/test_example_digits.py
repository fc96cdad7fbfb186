"""The worked example examples/digits_cnn.py runs, learns and draws its two pictures.

A short run (``--quick``: three epochs on a stratified subset of 600 digits, one seed, every
pooling kind) takes a few seconds.
Skipped when the example's extra dependencies (``pip install ".[examples]"``) are missing, or
when the tests run without the repository's ``examples/`` folder next to them.
"""

import importlib.util
import pathlib

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")
pytest.importorskip("threadpoolctl")

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "digits_cnn.py"


@pytest.fixture(scope="module")
def digits_cnn():
    if not EXAMPLE.is_file():
        pytest.skip(f"{EXAMPLE} not found (tests run outside the repository)")
    spec = importlib.util.spec_from_file_location("digits_cnn", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_short_run_learns_and_writes_both_pngs(digits_cnn, tmp_path, capsys):
    # --quick: 3 epochs of 450 training images (28 steps each), one seed, every pooling kind.
    # (One such epoch is not enough: this GAP network sits near chance for its first
    # ~50-100 SGD steps, while its convolutions learn spatially selective features.)
    result = digits_cnn.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    printed = capsys.readouterr().out

    # the gradient check ran, for every pooling kind (stochastic in both modes), and agreed
    assert set(result["gradient_check"]) == {
        "MaxPool2d", "AvgPool2d", "Stochastic train", "Stochastic eval"}
    assert max(result["gradient_check"].values()) < 1e-5, result["gradient_check"]
    assert "analytic and numeric gradients agree" in printed

    # it learns: ten classes, so chance is 0.1
    assert set(result["test_accuracy"]) == {"max", "avg", "stochastic"}
    for kind, accs in result["test_accuracy"].items():
        assert len(accs) == 1
        assert accs[0] > 0.3, (kind, accs)

    # the table and both pictures
    for name in ("MaxPool2d", "AvgPool2d", "StochasticPool2d"):
        assert f"| `{name}` |" in printed
    assert [pathlib.Path(p).name for p in result["pngs"]] == [
        "digits_training_curves.png", "digits_cam.png"]
    for path in result["pngs"]:
        path = pathlib.Path(path)
        assert path.parent == tmp_path
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert 1_000 < path.stat().st_size < 150_000


def test_im2col_convolution_matches_a_direct_loop(digits_cnn):
    """The example's own NumPy convolution (not part of poolkit) is a real convolution."""
    import numpy as np

    rng = np.random.default_rng(0)
    conv = digits_cnn.Conv2d(3, 4, 3, 1, rng, np.float64)
    conv.b[...] = rng.standard_normal(4)
    x = rng.standard_normal((2, 3, 5, 6))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.empty((2, 4, 5, 6))
    for n in range(2):
        for f in range(4):
            for i in range(5):
                for j in range(6):
                    patch = xp[n, :, i:i + 3, j:j + 3]
                    expected[n, f, i, j] = (patch * conv.W[f]).sum() + conv.b[f]
    np.testing.assert_allclose(conv.forward(x), expected, rtol=1e-12, atol=1e-12)

    # backward is the adjoint of forward: <conv(x) - b, g> == <x, conv.backward(g)>
    g = rng.standard_normal(expected.shape)
    dx = conv.backward(g)
    lhs = ((expected - conv.b[:, None, None]) * g).sum()
    np.testing.assert_allclose(lhs, (x * dx).sum(), rtol=1e-10)
