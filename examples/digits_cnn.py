"""A small convolutional network on scikit-learn's digits, trained with poolkit's layers.

    python examples/digits_cnn.py                   # the full run (under 3 minutes on 2 cores)
    python examples/digits_cnn.py --quick           # a few seconds: a smoke test
    python examples/digits_cnn.py --help

Needs ``pip install ".[examples]"`` (scikit-learn, matplotlib, tqdm). The data ships with
scikit-learn (``load_digits``: 1,797 grey 8x8 images of the digits 0-9), so nothing is
downloaded.

The network, for one 1x8x8 image::

    standardise: (x - mean) / std              1x8x8     (the training set's pixel statistics)
    conv 3x3, 1 -> 16 channels, padding 1      16x8x8    (im2col + one matrix product, NumPy)
    ReLU
    pooling 2x2, stride 2 (poolkit)            16x4x4    MaxPool2d | AvgPool2d | StochasticPool2d
    conv 3x3, 16 -> 32 channels, padding 1     32x4x4
    ReLU                                                  <- the "last feature maps" of the CAM
    global average pooling (poolkit)           32
    linear 32 -> 10                            10        <- its weights are the CAM's weights
    softmax cross-entropy

Everything except pooling is plain NumPy written to be read, not to be fast: it is part of
this example, not of poolkit. Every pooling step, forward and backward, goes through a poolkit
layer object (``layer.forward(x)`` caches what ``layer.backward(grad)`` needs).

What the script does:

1. checks the whole network's analytic gradient against central finite differences
   (float64, a few entries of every parameter, each pooling kind) and prints the errors;
2. trains the same network with max, average and stochastic pooling in turn, for each of
   ``--seeds`` seeds (a seed fixes the initial weights, the order of the mini-batches and the
   stochastic pooling's random numbers; the same seed gives every pooling kind the same
   initial weights and batches, so the comparison is paired), on one fixed stratified
   train/test split, with SGD with momentum;
3. prints a table (mean ± std over the seeds): test and training accuracy; test accuracy
   under two stress tests that probe the claims made for mean and max pooling (noise added
   to the test images; an error added to the trained convolution weights); training time
   per epoch and the part of it spent in poolkit's pooling layer;
4. writes two PNGs to ``--out``: the training curves of the three pooling kinds, and a grid of
   test digits overlaid with their class activation maps (``poolkit.class_activation_map``).

Everything runs on one thread by default (``--threads``): poolkit's layers get
``n_threads=1`` and NumPy's BLAS is limited with threadpoolctl. A batch of 32 images of 8x8
is a few microseconds of work per operation, too little to share between threads; on a busy
machine, waking a thread team for each call costs more than the work itself.

``main(argv)`` runs it all and returns the results, so a test can call it directly.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import poolkit

POOLING_KINDS = ("max", "avg", "stochastic")
POOLING_NAMES = {"max": "MaxPool2d", "avg": "AvgPool2d", "stochastic": "StochasticPool2d"}
N_CLASSES = 10
PIXEL_NOISE = 0.25      # std of the noise added to test images (pixels are in [0, 1])
WEIGHT_NOISE = 0.25     # std of the error added to conv weights, relative to their std


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def load_data(subset=None, test_size=0.25, split_seed=0, dtype=np.float32):
    """The digits as (N, 1, 8, 8) arrays scaled to [0, 1], split into stratified train/test sets.

    ``subset``: keep only this many images (a stratified sample) before splitting.
    The split is the same for every training seed, so every run is scored on the same images.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(dtype)[:, None, :, :]   # pixel values are 0..16
    y = digits.target.astype(np.int64)
    if subset is not None and subset < len(y):
        x, _, y, _ = train_test_split(x, y, train_size=subset, stratify=y,
                                      random_state=split_seed)
    return train_test_split(x, y, test_size=test_size, stratify=y, random_state=split_seed)


# ---------------------------------------------------------------------------------------------
# The NumPy parts of the network
# ---------------------------------------------------------------------------------------------

def im2col(x, k, pad):
    """(N, C, H, W) -> (N * H_out * W_out, C * k * k): one row per output position, holding
    the k x k patch of every input channel that the kernel sees there (stride 1)."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    patches = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
    n, c, h_out, w_out = patches.shape[:4]                    # (N, C, Ho, Wo, k, k)
    return patches.transpose(0, 2, 3, 1, 4, 5).reshape(n * h_out * w_out, c * k * k)


def col2im(cols, x_shape, k, pad):
    """The adjoint of im2col: add every patch gradient back onto the input positions it came
    from (patches overlap, so positions receive several contributions)."""
    n, c, h, w = x_shape
    h_out, w_out = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    cols = cols.reshape(n, h_out, w_out, c, k, k).transpose(0, 3, 4, 5, 1, 2)
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + h_out, j:j + w_out] += cols[:, :, i, j]
    return dxp[:, :, pad:pad + h, pad:pad + w]


class Conv2d:
    """k x k convolution, stride 1, zero padding ``pad``: im2col, then one matrix product."""

    def __init__(self, c_in, c_out, k, pad, rng, dtype):
        fan_in = c_in * k * k
        self.W = (rng.standard_normal((c_out, c_in, k, k)) * np.sqrt(2.0 / fan_in)).astype(dtype)
        self.b = np.zeros(c_out, dtype)
        self.k, self.pad = k, pad

    def forward(self, x):
        n, _, h, w = x.shape
        self.x_shape = x.shape
        self.cols = im2col(x, self.k, self.pad)                     # (N*Ho*Wo, C*k*k)
        out = self.cols @ self.W.reshape(len(self.W), -1).T + self.b   # (N*Ho*Wo, F)
        h_out, w_out = h + 2 * self.pad - self.k + 1, w + 2 * self.pad - self.k + 1
        return out.reshape(n, h_out, w_out, -1).transpose(0, 3, 1, 2)

    def backward(self, grad):
        g = grad.transpose(0, 2, 3, 1).reshape(-1, len(self.W))      # (N*Ho*Wo, F)
        self.dW = (g.T @ self.cols).reshape(self.W.shape)
        self.db = g.sum(axis=0)
        return col2im(g @ self.W.reshape(len(self.W), -1), self.x_shape, self.k, self.pad)


class ReLU:
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, grad):
        return grad * self.mask


class Linear:
    def __init__(self, n_in, n_out, rng, dtype):
        self.W = (rng.standard_normal((n_out, n_in)) * np.sqrt(1.0 / n_in)).astype(dtype)
        self.b = np.zeros(n_out, dtype)

    def forward(self, x):
        self.x = x
        return x @ self.W.T + self.b

    def backward(self, grad):
        self.dW = grad.T @ self.x
        self.db = grad.sum(axis=0)
        return grad @ self.W


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(labels)
    loss = -log_p[np.arange(n), labels].mean()
    grad = np.exp(log_p)
    grad[np.arange(n), labels] -= 1.0
    return loss, grad / n


def make_pool(kind, seed, n_threads=1):
    """The 2x2, stride-2 pooling layer of the network: a poolkit layer object."""
    if kind == "max":
        return poolkit.MaxPool2d(2, n_threads=n_threads)
    if kind == "avg":
        return poolkit.AvgPool2d(2, n_threads=n_threads)
    if kind == "stochastic":
        # The layer turns the seed into one Generator for its life and draws fresh random
        # numbers on every training forward; a new layer with the same seed repeats them.
        return poolkit.StochasticPool2d(2, rng=seed, n_threads=n_threads)
    raise ValueError(f"unknown pooling kind {kind!r}; choose from {POOLING_KINDS}")


class Net:
    """conv-ReLU-pool-conv-ReLU-GAP-linear; see the module docstring for the shapes."""

    def __init__(self, pool_kind, seed, pixel_stats=(0.0, 1.0), channels=(16, 32),
                 dtype=np.float32, n_threads=1):
        rng = np.random.default_rng(seed)
        c1, c2 = channels
        # Inputs are standardised with the training set's pixel mean and std (fixed, not
        # learned): zero-mean inputs let the first steps of SGD make progress (with raw
        # [0, 1] pixels the blank background feeds exact zeros into the ReLUs).
        self.pixel_mean, self.pixel_std = (dtype(v) for v in pixel_stats)
        self.conv1 = Conv2d(1, c1, 3, 1, rng, dtype)
        self.relu1 = ReLU()
        self.pool = make_pool(pool_kind, seed, n_threads)      # poolkit
        self.conv2 = Conv2d(c1, c2, 3, 1, rng, dtype)
        self.relu2 = ReLU()
        self.gap = poolkit.GlobalAvgPool2d(n_threads=n_threads)  # poolkit: (N,C,h,w) -> (N,C)
        self.fc = Linear(c2, N_CLASSES, rng, dtype)
        self.pool_seconds = 0.0       # time spent in the pooling layer's forward and backward

    def parameters(self):
        """(name, layer, attribute) of every trainable array; gradient: layer.d<attribute>."""
        return [(f"{name}.{attr}", layer, attr)
                for name, layer in (("conv1", self.conv1), ("conv2", self.conv2), ("fc", self.fc))
                for attr in ("W", "b")]

    def train(self, mode=True):
        self.pool.train(mode)          # matters for stochastic pooling only
        return self

    def eval(self):
        return self.train(False)

    def forward(self, x):
        x = (x - self.pixel_mean) / self.pixel_std
        h = self.relu1.forward(self.conv1.forward(x))
        start = time.perf_counter()
        h = self.pool.forward(h)
        self.pool_seconds += time.perf_counter() - start
        self.features = self.relu2.forward(self.conv2.forward(h))   # kept for the CAM
        return self.fc.forward(self.gap.forward(self.features))

    def backward(self, grad_logits):
        g = self.gap.backward(self.fc.backward(grad_logits))
        g = self.conv2.backward(self.relu2.backward(g))
        start = time.perf_counter()
        g = self.pool.backward(g)
        self.pool_seconds += time.perf_counter() - start
        self.conv1.backward(self.relu1.backward(g))

    def predict(self, x, batch_size=512):
        self.eval()
        return np.concatenate([self.forward(x[i:i + batch_size]).argmax(axis=1)
                               for i in range(0, len(x), batch_size)])


class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum: v <- mu v - lr g; p <- p + v."""

    def __init__(self, net, lr, momentum):
        self.net, self.lr, self.momentum = net, lr, momentum
        self.velocity = {name: np.zeros_like(getattr(layer, attr))
                         for name, layer, attr in net.parameters()}

    def step(self):
        for name, layer, attr in self.net.parameters():
            v = self.velocity[name]
            v *= self.momentum
            v -= self.lr * getattr(layer, "d" + attr)
            getattr(layer, attr)[...] += v


# ---------------------------------------------------------------------------------------------
# Gradient check
# ---------------------------------------------------------------------------------------------

GRAD_CHECKS = (  # (name, pooling kind, training mode)
    ("MaxPool2d", "max", True),
    ("AvgPool2d", "avg", True),
    ("Stochastic train", "stochastic", True),
    ("Stochastic eval", "stochastic", False),
)


def gradient_check(x, y, per_param=3, eps=1e-6, seed=0):
    """Compare the analytic gradient of the loss with central finite differences, in float64,
    for ``per_param`` random entries of every parameter array, for each pooling kind.

    Stochastic pooling is checked in both modes. In inference it outputs
    ``sum(a^2) / sum(a)``, a smooth function of the activations. In training it picks one
    activation per window at random, and every forward pass draws new random numbers; so
    for the check every forward pass gets a new layer with the same seed, which repeats the
    same draws, and the finite differences see one fixed choice per window (as the analytic
    gradient does).

    Returns {check name: largest relative error |a - n| / (|a| + |n|)}.
    """
    x = x.astype(np.float64)
    rng = np.random.default_rng(seed)
    errors = {}                      # {check: {parameter: largest relative error}}
    example = None
    for check, kind, training in GRAD_CHECKS:
        net = Net(kind, seed, (x.mean(), x.std()), dtype=np.float64).train(training)
        # Biases start at zero; give them small random values, as after some training, so
        # that no ReLU input sits exactly on the kink at 0 (say, a blank patch: W . 0 + 0),
        # where a finite difference is not a derivative.
        for _, layer, attr in net.parameters():
            if attr == "b":
                layer.b[...] = rng.normal(0.0, 0.1, layer.b.shape)

        def loss(net=net, kind=kind, training=training):
            if kind == "stochastic" and training:
                net.pool = make_pool(kind, seed).train(True)   # the same random draws again
            return softmax_cross_entropy(net.forward(x), y)

        net.backward(loss()[1])
        errors[check] = {}
        for name, layer, attr in net.parameters():
            p, dp = getattr(layer, attr), getattr(layer, "d" + attr)
            worst = 0.0
            for flat in rng.choice(p.size, size=min(per_param, p.size), replace=False):
                i = np.unravel_index(flat, p.shape)
                saved = p[i]
                p[i] = saved + eps
                plus = loss()[0]
                p[i] = saved - eps
                minus = loss()[0]
                p[i] = saved
                numeric = (plus - minus) / (2 * eps)
                rel = abs(dp[i] - numeric) / max(abs(dp[i]) + abs(numeric), 1e-300)
                worst = max(worst, rel)
                if example is None:
                    example = (check, name, [int(v) for v in i], dp[i], numeric)
            errors[check][name] = worst

    print(f"Gradient check: analytic vs central finite differences (float64, eps {eps:g}), "
          f"{per_param} random entries of each parameter, {len(y)} images;")
    print("largest relative error |a - n| / (|a| + |n|) per parameter:")
    print("  " + f"{'':<9}" + "".join(f"{check:>18}" for check, _, _ in GRAD_CHECKS))
    for name, _, _ in net.parameters():
        print(f"  {name:<9}" + "".join(f"{errors[check][name]:>18.1e}"
                                        for check, _, _ in GRAD_CHECKS))
    check, name, i, analytic, numeric = example
    print(f"  (for example {check}, {name}{i}: analytic {analytic:+.10f}, "
          f"numeric {numeric:+.10f})")
    return {check: max(e.values()) for check, e in errors.items()}


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

def accuracy(net, x, y):
    return float((net.predict(x) == y).mean())


def train_one(kind, seed, data, args, progress):
    """Train one network; returns its per-epoch history, its training seconds per epoch and
    the part of them spent in the pooling layer (medians over the epochs: on a shared machine
    a few epochs may be slowed down by other work), and the net.

    The learning rate follows a cosine from ``args.lr`` down to 0 over the epochs, so the
    final weights (and the accuracy reported) do not depend on where in a late oscillation
    training happened to stop.
    """
    x_train, x_test, y_train, y_test = data
    net = Net(kind, seed, (x_train.mean(), x_train.std()), n_threads=args.threads)
    opt = SGD(net, args.lr, args.momentum)
    order_rng = np.random.default_rng(seed)
    history = {"loss": [], "test_acc": []}
    seconds, pool_seconds = [], []
    for epoch in range(args.epochs):
        opt.lr = args.lr * 0.5 * (1 + np.cos(np.pi * epoch / args.epochs))
        net.train()
        net.pool_seconds = 0.0
        start = time.perf_counter()
        order = order_rng.permutation(len(y_train))
        losses = []
        for i in range(0, len(order), args.batch_size):
            batch = order[i:i + args.batch_size]
            loss, grad = softmax_cross_entropy(net.forward(x_train[batch]), y_train[batch])
            net.backward(grad)
            opt.step()
            losses.append(loss * len(batch))
        seconds.append(time.perf_counter() - start)
        pool_seconds.append(net.pool_seconds)
        history["loss"].append(sum(losses) / len(order))
        history["test_acc"].append(accuracy(net, x_test, y_test))
        progress.set_postfix_str(f"{POOLING_NAMES[kind]} seed {seed} "
                                 f"loss {history['loss'][-1]:.3f} "
                                 f"test acc {history['test_acc'][-1]:.3f}")
        progress.update(1)
    history["train_acc"] = accuracy(net, x_train, y_train)
    return history, (float(np.median(seconds)), float(np.median(pool_seconds))), net


def robustness(net, x_test, y_test, seed, pixel_noise=None, weight_noise=None, draws=5):
    """Two stress tests of a trained network, for the tutorial's two claims.

    ``noisy pixels``: test accuracy when Gaussian noise (std ``pixel_noise``; pixels are in
    [0, 1]) is added to every test image -- the variance a small neighbourhood brings, which
    mean pooling is said to reduce.

    ``perturbed conv``: test accuracy when both convolutions' weights carry an error (Gaussian,
    std ``weight_noise`` times the std of that layer's weights) -- the convolution-parameter
    error whose bias max pooling is said to reduce.

    Each is the mean over ``draws`` random draws; the network is restored afterwards.
    """
    pixel_noise = PIXEL_NOISE if pixel_noise is None else pixel_noise
    weight_noise = WEIGHT_NOISE if weight_noise is None else weight_noise
    rng = np.random.default_rng(10_000 + seed)
    noisy, perturbed = [], []
    for _ in range(draws):
        x_noisy = x_test + rng.normal(0.0, pixel_noise, x_test.shape).astype(x_test.dtype)
        noisy.append(accuracy(net, x_noisy, y_test))
        saved = [net.conv1.W.copy(), net.conv2.W.copy()]
        for conv in (net.conv1, net.conv2):
            error = rng.normal(0.0, weight_noise * conv.W.std(), conv.W.shape)
            conv.W += error.astype(conv.W.dtype)
        perturbed.append(accuracy(net, x_test, y_test))
        net.conv1.W[...], net.conv2.W[...] = saved
    return float(np.mean(noisy)), float(np.mean(perturbed))


def mean_spread(values):
    """'mean ± std' over seeds (sample std; 0 for a single seed)."""
    values = np.asarray(values, dtype=float)
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.3f} ± {std:.3f}"


# ---------------------------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------------------------

def plot_curves(histories, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(8, 3.2))
    colors = {"max": "tab:red", "avg": "tab:blue", "stochastic": "tab:green"}
    for kind, runs in histories.items():
        for key, ax in (("loss", ax_loss), ("test_err", ax_err)):
            values = np.array([h["loss"] if key == "loss" else 1 - np.array(h["test_acc"])
                               for h in runs])                  # (seeds, epochs)
            epochs = np.arange(1, values.shape[1] + 1)
            mean = values.mean(axis=0)
            ax.plot(epochs, mean, color=colors[kind], label=POOLING_NAMES[kind])
            ax.fill_between(epochs, values.min(axis=0), values.max(axis=0),
                            color=colors[kind], alpha=0.2, linewidth=0)
    ax_loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)", yscale="log")
    ax_err.set(xlabel="epoch", ylabel="test error (1 - accuracy)", yscale="log")
    ticks = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
    ax_err.yaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    ax_err.yaxis.set_major_formatter(
        matplotlib.ticker.FixedFormatter([f"{100 * t:g}%" for t in ticks]))
    ax_err.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax_err.legend(loc="upper right", fontsize="small")
    n_seeds = len(next(iter(histories.values())))
    fig.suptitle(f"digits CNN: mean over {n_seeds} seed(s), band = min..max", fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_cam_grid(net, kind, x_test, y_test, path, n_cols=8):
    """Test digits with their class activation maps overlaid.

    Row 1: correctly classified digits, CAM of the predicted (= true) class.
    Row 2: misclassified digits, CAM of the (wrong) predicted class.
    Row 3: the same misclassified digits, CAM of their true class.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pred = net.predict(x_test)
    net.eval()
    right = np.flatnonzero(pred == y_test)
    # one correct example per class first, so the row shows several digits
    right = np.array([right[y_test[right] == c][0] for c in range(N_CLASSES)
                      if np.any(y_test[right] == c)], dtype=int)[:n_cols]
    wrong = np.flatnonzero(pred != y_test)[:n_cols]

    def cams(indices, classes):
        """One map per image, each for its own class: sum_k W[class, k] * features[k] over the
        last feature maps (N, 32, 4, 4), resized bilinearly to the 8x8 input and normalised
        to [0, 1] by poolkit."""
        if len(indices) == 0:
            return np.zeros((0, 8, 8))
        net.forward(x_test[indices])          # fills net.features
        return poolkit.class_activation_map(net.features, net.fc.W, classes, size=(8, 8))

    rows = [
        ("correct:\nCAM of the\npredicted class", right, cams(right, pred[right]), pred[right]),
        ("wrong:\nCAM of the\npredicted class", wrong, cams(wrong, pred[wrong]), pred[wrong]),
        ("wrong:\nCAM of the\ntrue class", wrong, cams(wrong, y_test[wrong]), y_test[wrong]),
    ]
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.1 * n_cols + 1.2, 1.3 * len(rows)),
                             squeeze=False)
    for r, (label, indices, maps, classes) in enumerate(rows):
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
        for col in range(n_cols):
            ax = axes[r, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(indices):
                ax.set_frame_on(False)
                continue
            i = indices[col]
            # the digit in grey, the map (already 8x8: poolkit resized it) half-transparent
            # on top, both drawn pixel by pixel
            ax.imshow(x_test[i, 0], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
            ax.imshow(maps[col], cmap="jet", vmin=0, vmax=1, alpha=0.5, interpolation="nearest")
            title = (f"{y_test[i]}" if r == 0 else
                     f"true {y_test[i]}, pred {pred[i]}" if r == 1 else f"map of {classes[col]}")
            ax.set_title(title, fontsize=7, pad=2)
    fig.suptitle(f"class activation maps of test digits ({POOLING_NAMES[kind]} network): "
                 f"red = most evidence for the class, blue = least", fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def parse_args(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(os.path.dirname(here), "docs", "images")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs per run (default 20; 3 with --quick)")
    p.add_argument("--seeds", type=int, default=None,
                   help="runs per pooling kind, seeds 0, 1, ... (default 3; 1 with --quick)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="mini-batch size (default 32; 16 with --quick)")
    p.add_argument("--lr", type=float, default=0.05,
                   help="initial SGD learning rate, decayed to 0 on a cosine (default 0.05)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--subset", type=int, default=None,
                   help="use only N images (stratified sample) before the train/test split")
    p.add_argument("--pooling", nargs="+", choices=POOLING_KINDS, default=list(POOLING_KINDS),
                   help="which pooling kinds to train (default: all three)")
    p.add_argument("--cam-pooling", choices=POOLING_KINDS, default="max",
                   help="whose network (seed 0) draws the class activation maps "
                        "(default max)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for poolkit's layers and for NumPy's BLAS; a batch of 8x8 "
                        "images is far too little work to share between threads (default 1)")
    p.add_argument("--out", default=default_out,
                   help="folder for the PNGs (default: docs/images in this repository)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test (a few seconds): --subset 600 --epochs 3 --seeds 1 "
                        "--batch-size 16, shorter gradient check")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    args = p.parse_args(argv)
    if args.quick and args.subset is None:
        args.subset = 600
    if args.epochs is None:
        args.epochs = 3 if args.quick else 20
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    if args.batch_size is None:
        args.batch_size = 16 if args.quick else 32
    if min(args.epochs, args.seeds, args.batch_size, args.threads) < 1:
        p.error("--epochs, --seeds, --batch-size and --threads must be at least 1")
    if args.subset is not None and args.subset < 100:
        p.error("--subset must be at least 100 (ten images of each digit, split 3:1)")
    if args.cam_pooling not in args.pooling:
        args.cam_pooling = args.pooling[0]
    return args


def main(argv=None):
    """Run the example (``argv`` as on the command line); returns a dict of the results:
    ``test_accuracy``, ``train_accuracy``, ``stress`` ({kind: [per seed]}; ``stress`` holds
    (noisy pixels, perturbed conv) pairs), ``seconds_per_epoch`` ({kind: [(training,
    pooling) per seed]}), ``gradient_check``, ``pngs`` (the two paths), ``wall_seconds``."""
    from threadpoolctl import threadpool_limits   # installed with scikit-learn

    args = parse_args(argv)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        return run(args)


def run(args):
    from tqdm.auto import tqdm

    wall_start = time.perf_counter()
    data = load_data(args.subset)
    x_train, x_test, y_train, y_test = data
    print(f"poolkit {poolkit.__version__}: digits, {len(y_train)} training and "
          f"{len(y_test)} test images (stratified split), 8x8 pixels, 10 classes")

    grad_errors = gradient_check(x_train[:8], y_train[:8], per_param=2 if args.quick else 3)
    ok = max(grad_errors.values()) < 1e-5
    print(f"  -> {'OK' if ok else 'MISMATCH'}: analytic and numeric gradients "
          f"{'agree' if ok else 'DISAGREE'}")

    histories = {kind: [] for kind in args.pooling}
    seconds = {kind: [] for kind in args.pooling}
    trained = {kind: [] for kind in args.pooling}
    total = len(args.pooling) * args.seeds * args.epochs
    with tqdm(total=total, desc="training", unit="epoch", disable=args.no_progress,
              file=sys.stdout, dynamic_ncols=True, mininterval=0.5) as progress:
        for kind in args.pooling:
            for seed in range(args.seeds):
                history, sec, net = train_one(kind, seed, data, args, progress)
                histories[kind].append(history)
                seconds[kind].append(sec)
                trained[kind].append(net)

    test_acc = {kind: [h["test_acc"][-1] for h in runs] for kind, runs in histories.items()}
    train_acc = {kind: [h["train_acc"] for h in runs] for kind, runs in histories.items()}
    stress = {kind: [robustness(net_, x_test, y_test, seed)
                     for seed, net_ in enumerate(trained[kind])] for kind in args.pooling}
    print(f"\nAfter {args.epochs} epochs: mean ± std over {args.seeds} seed(s); "
          f"{len(y_train)} training / {len(y_test)} test images, batch {args.batch_size}, "
          f"{args.threads} thread(s).")
    print(f"noisy pixels: test accuracy with Gaussian noise (std {PIXEL_NOISE}) added to the "
          f"test images; perturbed conv: test accuracy with Gaussian noise (std "
          f"{WEIGHT_NOISE} x the layer's weight std) added to both convolutions' weights. "
          f"Time: training seconds per epoch, and the milliseconds of it spent in the "
          f"pooling layer's forward + backward (medians).\n")
    print("| pooling | test accuracy | train accuracy | noisy pixels | perturbed conv "
          "| s / epoch | pooling ms / epoch |")
    print("|---|---|---|---|---|---|---|")
    for kind in args.pooling:
        print(f"| `{POOLING_NAMES[kind]}` | {mean_spread(test_acc[kind])} "
              f"| {mean_spread(train_acc[kind])} "
              f"| {mean_spread([a for a, _ in stress[kind]])} "
              f"| {mean_spread([b for _, b in stress[kind]])} "
              f"| {np.median([t for t, _ in seconds[kind]]):.3f} "
              f"| {1e3 * np.median([p for _, p in seconds[kind]]):.1f} |")

    os.makedirs(args.out, exist_ok=True)
    curves = os.path.join(args.out, "digits_training_curves.png")
    cam = os.path.join(args.out, "digits_cam.png")
    plot_curves(histories, curves)
    plot_cam_grid(trained[args.cam_pooling][0], args.cam_pooling, x_test, y_test, cam)
    wall = time.perf_counter() - wall_start
    print(f"\nwrote {curves}\nwrote {cam}\ntotal wall time {wall:.1f} s")
    return {"test_accuracy": test_acc, "train_accuracy": train_acc, "stress": stress,
            "seconds_per_epoch": seconds,            # {kind: [(total, pooling) per seed]}
            "gradient_check": grad_errors,
            "pngs": [curves, cam], "wall_seconds": wall}


if __name__ == "__main__":
    main()
