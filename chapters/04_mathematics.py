# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4. The mathematics
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/course-llm/finetuning-prompt-course/blob/main/chapters/04_mathematics.ipynb)
#
# The source article's §4 sums up fine-tuning in one formula,
# $\theta^* = \theta_0 + \alpha \cdot (x - \theta_0)$ with $x$ "the loss obtained during
# training". That formula is not how
# models are trained. This chapter runs it, shows what it really does, and then builds the
# correct mathematics from the ground up — gradient descent, the softmax cross-entropy loss and its
# gradient, backpropagation — in a few lines of NumPy, each one checked against PyTorch's
# automatic differentiation and against finite differences. It ends by training a real
# classifier head on MiniLM features with hand-written gradient descent, step for step equal to
# `torch.optim`.
#
# **Full run:** 1–2 min on a 2-core CPU (1.1 min for the stored outputs; the time is printed at the end); most
# of it is MiniLM embedding the reviews. The mathematics itself runs in seconds.
#
# **In this chapter you will**
#
# - run the article's update rule next to gradient descent on the same problem, and see why it is
#   wrong (§4.1 of the source);
# - derive the update $\theta \leftarrow \theta - \alpha \nabla_\theta L(\theta)$ and check
#   numerically that it lowers the loss;
# - derive softmax + cross-entropy and its gradient $p - y$;
# - write the forward and backward pass of a two-layer network by hand and check it against
#   `torch.autograd` and finite differences (relative error below $10^{-6}$ in float64);
# - watch gradient descent on a loss surface with a learning rate too small, right and too large,
#   and compare SGD, momentum and Adam;
# - train a logistic-regression head on frozen MiniLM features by hand and match `torch.optim`;
# - run the article's own training code (§4.6, §5.2) next to the fix and measure each mistake: a
#   log of a rounded probability, a summed loss, one update per epoch, an Adam rebuilt at every
#   step;
# - solve four auto-checked exercises: the softmax-cross-entropy gradient, one backprop step,
#   choosing a learning rate for a new valley, and an experiment with a rebuilt optimiser.

# %% [markdown]
# ## Set-up
#
# The first cell installs the course when the notebook runs on Google Colab; on your own machine,
# where you installed the course with `bash scripts/setup.sh`, it does nothing.

# %%
import importlib.util
import os
import subprocess
import sys

COURSE_REPO = "https://github.com/course-llm/finetuning-prompt-course"
IN_COLAB = "google.colab" in sys.modules
if IN_COLAB and importlib.util.find_spec("course_utils") is None:
    clone = ["git", "clone", "--depth", "1", COURSE_REPO, "/content/course"]
    subprocess.run(clone, check=True)
    pip = [sys.executable, "-m", "pip", "install", "-q", "-e", "/content/course"]
    subprocess.run(pip, check=True)
    sys.path.insert(0, "/content/course")
    os.chdir("/content/course/chapters")

# %% [markdown]
# The **parameters**: `SMOKE = True` runs tiny settings (how the tests run every notebook); the
# stored outputs come from a full run (`SMOKE = False`). Only section 4.7 depends on it (how many
# reviews MiniLM embeds); everything else is the same in both modes.

# %% tags=["parameters"]
# Run All runs the full experiment that produced the stored outputs: 45 s on 2 CPU cores, no GPU.
# SMOKE = True runs tiny settings instead, in under a minute (what the tests run).
SMOKE = False
DEVICE = "auto"  # "auto", "cpu", "cuda" or "mps"
ENCODER = "minilm"  # a course model, a local folder or a Hub id
SEED = 0

# %%
import time
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch
import transformers

from course_utils.data import load_movie_reviews
from course_utils.exercises import chapter_exercises
from course_utils.mathutils import (
    SGD,
    Adam,
    Momentum,
    Quadratic,
    Rosenbrock,
    cross_entropy,
    numerical_gradient,
    relative_error,
    run_optimizer,
    softmax,
)
from course_utils.models import get_device, load_encoder

transformers.utils.logging.disable_progress_bar()  # keep the stored outputs short
notebook_start = time.perf_counter()
torch.manual_seed(SEED)
TRAIN_N = 300 if SMOKE else 3000  # training reviews embedded for the logistic-regression head
TEST_N = 100 if SMOKE else None  # None: the whole test split
TOL = 1e-6  # the largest relative error a gradient check accepts (float64)
mode = "SMOKE (tiny settings)" if SMOKE else "full"
print(
    f"mode: {mode}; device: {get_device(DEVICE)}; NumPy {np.__version__}, torch {torch.__version__}"
)

# %% [markdown]
# ## 4.1 The article's update rule, run
#
# The source (§4.1) writes the fine-tuning update as
#
# $$\theta^* = \theta_0 + \alpha \cdot (x - \theta_0),$$
#
# with $\theta_0$ the initial parameters, $\alpha$ the learning rate and $x$ "the loss value
# obtained during training". Read as an iteration, each step moves the parameters a fraction
# $\alpha$ of the way **towards the value of the loss**. Let us run it on the simplest problem
# there is: fit one slope $\theta$ to data $y \approx 3x$ by least squares,
#
# $$L(\theta) = \frac{1}{2n}\sum_{i=1}^{n} (\theta x_i - y_i)^2 ,$$
#
# next to gradient descent, $\theta \leftarrow \theta - \alpha L'(\theta)$ with
# $L'(\theta) = \frac1n \sum_i (\theta x_i - y_i)\,x_i$, from the same start with the same $\alpha$.

# %%
rng = np.random.default_rng(SEED)
x_data = rng.normal(size=50)
y_data = 3.0 * x_data + 0.5 * rng.normal(size=50)  # the true slope is 3


def loss_1d(theta, scale=1.0):
    """Least squares; ``scale`` multiplies the loss (e.g. a sum instead of a mean)."""
    return scale * 0.5 * np.mean((theta * x_data - y_data) ** 2)


def grad_1d(theta, scale=1.0):
    return scale * np.mean((theta * x_data - y_data) * x_data)


def article_rule(theta0, alpha, steps, scale=1.0):
    path = [theta0]
    for _ in range(steps):
        theta = path[-1] + alpha * (loss_1d(path[-1], scale) - path[-1])  # θ + α(x − θ), x = loss
        path.append(theta if abs(theta) < 1e6 else np.nan)  # stop when it blows up
    return np.array(path)


def gradient_descent_1d(theta0, alpha, steps, scale=1.0):
    path = [theta0]
    for _ in range(steps):
        path.append(path[-1] - alpha * grad_1d(path[-1], scale))  # θ − α L'(θ)
    return np.array(path)


ALPHA, STEPS = 0.1, 100
theta_best = np.sum(x_data * y_data) / np.sum(x_data**2)  # the least-squares solution
print(f"least-squares optimum: θ = {theta_best:.3f}, loss {loss_1d(theta_best):.3f}")
runs_1d = {}
for theta0 in [0.0, 5.0, 7.0]:
    article = article_rule(theta0, ALPHA, STEPS)
    gd = gradient_descent_1d(theta0, ALPHA, STEPS)
    runs_1d[theta0] = article, gd
    end = (
        "diverged"
        if np.isnan(article[-1])
        else f"θ = {article[-1]:.3f}, loss {loss_1d(article[-1]):.3f}"
    )
    print(f"start θ0 = {theta0:.0f}:  article's rule → {end:<26} gradient descent → "
          f"θ = {gd[-1]:.3f}, loss {loss_1d(gd[-1]):.3f}")  # fmt: skip
ratio = loss_1d(runs_1d[0.0][0][-1]) / loss_1d(theta_best)
print(f"where the article's rule settles, the loss is {ratio:.1f}× the minimum")

# %% [markdown]
# The article's rule does converge from 0 and from 5 — but to the wrong slope, with a loss many
# times the optimum's; from 7 it diverges. The left plot shows why: it stops where
# $\theta = L(\theta)$, where the parabola crosses the diagonal, a point that has nothing to do
# with the bottom of the parabola.

# %%
article_end = runs_1d[0.0][0][-1]
thetas = np.linspace(-1, 8, 400)
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
ax = axes[0]
ax.plot(thetas, [loss_1d(t) for t in thetas], label="loss $L(\\theta)$")
ax.plot(thetas, thetas, "--", color="gray", label="$L = \\theta$ (where the article's rule stops)")
ax.plot(article_end, loss_1d(article_end), "o", color="tab:red", label="article's rule ends here")
ax.plot(
    theta_best, loss_1d(theta_best), "*", ms=14, color="tab:green", label="minimum (GD ends here)"
)
ax.set_ylim(-0.5, 8)
ax.set_xlabel("parameter θ (slope)")
ax.set_ylabel("loss")
ax.set_title("The article's rule seeks L(θ) = θ, not the minimum")
ax.legend(fontsize=8)
ax = axes[1]
for theta0, (article, gd) in runs_1d.items():
    ax.plot(gd, color="tab:green", alpha=0.8, label="gradient descent" if theta0 == 0 else None)
    ax.plot(article, color="tab:red", alpha=0.8, label="article's rule" if theta0 == 0 else None)
ax.axhline(theta_best, color="gray", lw=0.8, ls=":")
ax.set_ylim(-0.5, 8)
ax.set_xlabel("iteration")
ax.set_ylabel("θ")
ax.set_title(f"Three starts (θ0 = 0, 5, 7), α = {ALPHA}")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# A second symptom: multiply the loss by a constant (for example, sum the squared errors instead
# of averaging them, or change the unit of $y$). The best slope does not change — the loss has
# the same minimum — so a sound training rule must land on the same $\theta$. Gradient descent
# does (the constant only rescales its steps, so we rescale $\alpha$ to compare like with like);
# the article's rule goes somewhere else.

# %% tags=["nbval-check-output"]
for scale in [1.0, 2.0, 10.0]:
    article = article_rule(0.0, ALPHA, 500, scale)
    gd = gradient_descent_1d(0.0, ALPHA / scale, 500, scale)
    end = "diverged" if np.isnan(article[-1]) else f"θ = {article[-1]:.3f}"
    print(f"loss × {scale:>4}: article's rule → {end:<10}  gradient descent → θ = {gd[-1]:.3f}")

# %% [markdown]
# **What the formula really is.** $\theta_0 + \alpha(x - \theta_0)$ is a step a fraction $\alpha$
# of the way from $\theta_0$ towards a *point* $x$ in parameter space. That is a legitimate
# operation when $x$ is a set of weights: the exponential moving average of weights, or the outer
# update of the Reptile meta-learning algorithm ([Nichol et al., 2018](https://arxiv.org/abs/1803.02999)), where $x$ is the result of
# a few steps of training. When $x$ is a loss — one number, measured on a different scale from the
# parameters — it makes no sense: the loss says *how bad* the model is, not *which way* to change
# the millions of parameters. That direction is the gradient.

# %% [markdown]
# ## 4.2 Deriving gradient descent
#
# Near the current parameters $\theta$ (a vector), a smooth loss is almost linear (a first-order
# Taylor expansion):
#
# $$L(\theta + \Delta) \approx L(\theta) + \nabla_\theta L(\theta)^\top \Delta .$$
#
# Among all small steps $\Delta$ of a given length, the inner product
# $\nabla L^\top \Delta$ is most negative when $\Delta$ points against the gradient. Taking
# $\Delta = -\alpha \nabla_\theta L(\theta)$ gives
#
# $$L(\theta - \alpha \nabla L) \approx L(\theta) - \alpha \,\lVert \nabla L(\theta) \rVert^2
# \;<\; L(\theta)$$
#
# for a small enough learning rate $\alpha > 0$, unless the gradient is zero (a minimum, a
# maximum or a saddle point). Repeating the step is **gradient descent**:
#
# $$\boxed{\theta \leftarrow \theta - \alpha \, \nabla_\theta L(\theta)}$$
#
# The article itself arrives here in its §4.5: after deriving the gradient of the cross-entropy
# it writes $\theta^* = \theta_0 - \alpha\, \partial L/\partial\theta$, the correct rule, which
# contradicts its own §4.1. This is what every optimiser in this course does, with refinements
# (momentum, Adam's per-parameter step sizes) in 4.6; in fine-tuning, $\theta$ starts at the pretrained weights
# instead of random ones — that is the whole difference. Let us check the prediction
# "the loss falls by $\alpha \lVert\nabla L\rVert^2$" on the 1-D problem, for shrinking $\alpha$:

# %% tags=["nbval-check-output"]
theta = 0.0
g = grad_1d(theta)
print(f"at θ = {theta}: L = {loss_1d(theta):.4f}, L'(θ) = {g:.4f}")
for alpha in [1.0, 0.3, 0.1, 0.01, 0.001]:
    actual = loss_1d(theta) - loss_1d(theta - alpha * g)
    predicted = alpha * g**2
    print(f"α = {alpha:<6} decrease {actual:10.6f}   predicted α·L'² = {predicted:10.6f}   "
          f"ratio {actual / predicted:.4f}")  # fmt: skip

# %% [markdown]
# For small $\alpha$ the ratio tends to 1: the linear prediction is exact in the limit. For large
# $\alpha$ the curvature (the second derivative, here $L'' = \frac1n\sum x_i^2$) eats into the
# gain, and beyond $\alpha = 2/L''$ a step *raises* the loss — gradient descent diverges. On this
# problem $2/L''$ is:

# %%
curvature = np.mean(x_data**2)
print(f"L'' = {curvature:.3f}, so gradient descent diverges for α > 2/L'' = {2 / curvature:.3f}")
for alpha in [0.5 / curvature, 1.0 / curvature, 1.9 / curvature, 2.1 / curvature]:
    end = gradient_descent_1d(0.0, alpha, 50)[-1]
    print(f"α = {alpha:.3f} ({alpha * curvature:.1f}/L''): θ after 50 steps = {end:.4g}")

# %% [markdown]
# ## 4.3 Softmax, cross-entropy and the gradient $p - y$
#
# A classifier with $K$ classes outputs one score per class, the **logits** $z \in \mathbb{R}^K$
# (MiniLM's classification head is a linear layer on top of the encoder). **Softmax** turns them
# into probabilities:
#
# $$p_k = \frac{e^{z_k}}{\sum_{j=1}^{K} e^{z_j}}, \qquad p_k > 0, \quad \sum_k p_k = 1 .$$
#
# The **cross-entropy** loss of an example whose true class is $c$ (one-hot target $y$, with
# $y_c = 1$ and the other $y_k = 0$) is the negative log-probability of the right class:
#
# $$L = -\sum_{k} y_k \log p_k = -\log p_c = -z_c + \log \sum_{j} e^{z_j} .$$
#
# The last form makes the derivative easy. The derivative of $\log\sum_j e^{z_j}$ with respect
# to $z_k$ is $e^{z_k} / \sum_j e^{z_j} = p_k$, and that of $-z_c$ is $-1$ if $k = c$ and $0$
# otherwise, i.e. $-y_k$. So
#
# $$\boxed{\frac{\partial L}{\partial z_k} = p_k - y_k}
# \qquad\text{or, as vectors,}\qquad \nabla_z L = p - y .$$
#
# The same result comes out of the chain rule through softmax's Jacobian,
# $\partial p_i / \partial z_k = p_i(\delta_{ik} - p_k)$:
#
# $$\frac{\partial L}{\partial z_k} = -\sum_i \frac{y_i}{p_i}\, p_i(\delta_{ik} - p_k)
# = -y_k + p_k \sum_i y_i = p_k - y_k .$$
#
# The gradient is "what the model predicts minus what it should predict": it is small when the
# model is right and confident, and it pushes the right logit up and every other logit down by
# exactly its probability. For a batch of $N$ examples the loss is the mean, so the gradient of
# the logits matrix $Z$ ($N \times K$) is $(P - Y)/N$.
#
# Two numerical details: softmax is computed on $z - \max_k z_k$ (the same probabilities, no
# overflow of $e^{z}$), and the loss as log-sum-exp minus $z_c$ (never $\log 0$). Both are in
# `course_utils.mathutils` (`softmax`, `cross_entropy`); here is the gradient, checked three
# ways on random logits: against finite differences, against `torch.autograd`, and against
# PyTorch's own `cross_entropy` loss.


# %%
def softmax_ce_grad(logits, labels):
    """d(mean cross-entropy)/d(logits) = (softmax(logits) - one_hot(labels)) / N."""
    n, k = logits.shape
    return (softmax(logits) - np.eye(k)[labels]) / n


rng = np.random.default_rng(SEED)
logits = rng.normal(size=(6, 4)) * 3  # 6 examples, 4 classes
labels = rng.integers(0, 4, size=6)

ours = softmax_ce_grad(logits, labels)
numeric = numerical_gradient(lambda z: cross_entropy(z, labels), logits)
z = torch.tensor(logits, requires_grad=True)  # float64, like the NumPy array
torch_loss = torch.nn.functional.cross_entropy(z, torch.tensor(labels))
torch_loss.backward()
errors = {
    "finite differences": relative_error(ours, numeric),
    "torch.autograd": relative_error(ours, z.grad.numpy()),
}
loss_gap = abs(cross_entropy(logits, labels) - torch_loss.item())
print(f"loss: ours {cross_entropy(logits, labels):.10f}, torch {torch_loss.item():.10f}")
for name, err in errors.items():
    print(f"gradient p − y vs {name:<18}: relative error {err:.1e}")
assert max(errors.values()) < TOL and loss_gap < 1e-12
print(f"✓ all below {TOL:g}")

# %% [markdown]
# ## 4.4 Backpropagation through a two-layer network, by hand
#
# A network is a chain of simple functions; backpropagation is the chain rule applied from the
# loss backwards, one layer at a time, reusing the values the forward pass computed. Our network
# has one hidden layer of $H$ tanh units and $K$ outputs; a batch $X$ is $N \times D$:
#
# $$A = X W_1 + b_1, \qquad h = \tanh(A), \qquad Z = h W_2 + b_2, \qquad
#   L = \frac1N \sum_{n} \mathrm{CE}(Z_n, y_n).$$
#
# Going backwards, every line is the chain rule for one operation (write $G_V$ for
# $\partial L / \partial V$, a matrix of the same shape as $V$):
#
# $$\begin{aligned}
# G_Z &= (P - Y)/N && \text{softmax + cross-entropy (4.3)}\\
# G_{W_2} &= h^\top G_Z, \quad G_{b_2} = \textstyle\sum_n G_{Z,n} && \text{linear layer: } Z = hW_2 + b_2\\
# G_h &= G_Z W_2^\top && \text{pass the gradient to the layer's input}\\
# G_A &= G_h \odot (1 - h^2) && \tanh'(a) = 1 - \tanh^2(a), \text{ element by element}\\
# G_{W_1} &= X^\top G_A, \quad G_{b_1} = \textstyle\sum_n G_{A,n} && \text{linear layer: } A = XW_1 + b_1
# \end{aligned}$$
#
# A useful sanity rule: each gradient has the shape of what it is the gradient of, and the
# shapes tell you where the transposes go. In NumPy:


# %%
def init_params(n_in, n_hidden, n_out, seed=SEED):
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.normal(size=(n_in, n_hidden)) / np.sqrt(n_in),
        "b1": rng.normal(size=n_hidden) * 0.1,
        "W2": rng.normal(size=(n_hidden, n_out)) / np.sqrt(n_hidden),
        "b2": rng.normal(size=n_out) * 0.1,
    }


def forward(params, X, y):
    """The loss and the values the backward pass needs (the *cache*)."""
    A = X @ params["W1"] + params["b1"]
    h = np.tanh(A)
    Z = h @ params["W2"] + params["b2"]
    return cross_entropy(Z, y), {"X": X, "y": y, "h": h, "Z": Z}


def backward(params, cache):
    """The gradient of the loss with respect to every parameter, by the chain rule."""
    X, y, h, Z = cache["X"], cache["y"], cache["h"], cache["Z"]
    G_Z = softmax_ce_grad(Z, y)  # (N, K)
    G_W2 = h.T @ G_Z  # (H, K)
    G_b2 = G_Z.sum(axis=0)  # (K,)
    G_h = G_Z @ params["W2"].T  # (N, H)
    G_A = G_h * (1 - h**2)  # (N, H)
    G_W1 = X.T @ G_A  # (D, H)
    G_b1 = G_A.sum(axis=0)  # (H,)
    return {"W1": G_W1, "b1": G_b1, "W2": G_W2, "b2": G_b2}


N, D, H, K = 16, 5, 8, 3
rng = np.random.default_rng(SEED)
X_toy = rng.normal(size=(N, D))
y_toy = rng.integers(0, K, size=N)
params = init_params(D, H, K)
loss, cache = forward(params, X_toy, y_toy)
grads = backward(params, cache)
n_values = sum(p.size for p in params.values())
print(f"network {D} → {H} (tanh) → {K}: {n_values} parameters; loss on {N} examples = {loss:.4f}")
print({name: g.shape for name, g in grads.items()})

# %% [markdown]
# **The gradient check.** Two independent references. *Finite differences*: nudge one parameter
# by $\pm\varepsilon$ and measure the change of the loss,
#
# $$\frac{\partial L}{\partial \theta_i} \approx
# \frac{L(\theta + \varepsilon e_i) - L(\theta - \varepsilon e_i)}{2\varepsilon}$$
#
# (error of order $\varepsilon^2$; `numerical_gradient` with
# $\varepsilon = 10^{-6}$), which needs two forward passes per parameter — fine for
# this network's few dozen parameters (printed above), hopeless for MiniLM's millions, which is
# why backpropagation matters.
# *`torch.autograd`*: the same network written in PyTorch, differentiated automatically. Both
# in float64. The error measure, per parameter tensor, is `relative_error(a, b)`
# $= \lVert a-b \rVert / \max(\lVert a \rVert, \lVert b\rVert)$.


# %%
def loss_with(name, value):
    """The loss as a function of one parameter tensor, the others fixed (for finite differences)."""
    return forward(params | {name: value}, X_toy, y_toy)[0]


torch_params = {name: torch.tensor(p, requires_grad=True) for name, p in params.items()}
hidden = torch.tanh(torch.tensor(X_toy) @ torch_params["W1"] + torch_params["b1"])
torch_logits = hidden @ torch_params["W2"] + torch_params["b2"]
torch_loss = torch.nn.functional.cross_entropy(torch_logits, torch.tensor(y_toy))
torch_loss.backward()

check = {}
print(f"{'parameter':<10}{'shape':>9}{'vs finite differences':>24}{'vs torch.autograd':>20}")
for name in params:
    numeric = numerical_gradient(lambda value, name=name: loss_with(name, value), params[name])
    check[name] = (relative_error(grads[name], numeric),
                   relative_error(grads[name], torch_params[name].grad.numpy()))  # fmt: skip
    print(f"{name:<10}{str(params[name].shape):>9}{check[name][0]:>24.1e}{check[name][1]:>20.1e}")
max_fd = max(e[0] for e in check.values())
max_torch = max(e[1] for e in check.values())
print(f"loss: ours {loss:.12f}, torch {torch_loss.item():.12f}")
print(f"max relative error: {max_fd:.1e} (finite differences), {max_torch:.1e} (torch.autograd)")
assert max_fd < TOL and max_torch < TOL, "the hand-derived gradient is wrong"
print(f"✓ both below {TOL:g}: the backward pass is right")

# %% [markdown]
# Agreement with `torch.autograd` is at the level of float64 rounding ($10^{-16}$): the two
# compute the same formulas. Agreement with finite differences is limited by the method itself
# (truncation $\sim\varepsilon^2$ and rounding $\sim 10^{-16}/\varepsilon$), and is still far
# below the $10^{-6}$ threshold.
#
# **Why float64.** The same check in float32 — the precision networks are usually *trained*
# in — fails, not because the gradient is wrong but because finite differences cannot resolve
# it: float32's rounding error ($\sim 10^{-7}$) divided by $2\varepsilon$ swamps the result.
# A real bug, by contrast, gives a large error even in float64. Let us see both:

# %%
params32 = {name: p.astype(np.float32) for name, p in params.items()}


def loss32(value):
    A = X_toy.astype(np.float32) @ value + params32["b1"]
    Z = np.tanh(A) @ params32["W2"] + params32["b2"]
    Z = Z - Z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(N), y_toy]))


def numerical_gradient32(f, x, eps):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[i] += eps
        minus[i] -= eps
        grad[i] = (f(plus) - f(minus)) / (plus[i] - minus[i])
    return grad


for eps in [1e-6, 1e-4, 1e-2]:
    err = relative_error(grads["W1"], numerical_gradient32(loss32, params32["W1"], eps))
    print(f"float32, ε = {eps:g}: relative error of the (correct) W1 gradient = {err:.1e}")
buggy = backward(params, cache)["W1"] / (1 - cache["h"] ** 2).mean()  # e.g. a wrong tanh'
print(f"float64, a buggy tanh': relative error = {relative_error(buggy, grads['W1']):.1e}")

# %% [markdown]
# ## 4.5 Gradient descent on a loss surface you can see
#
# With two parameters the loss is a landscape we can draw. Near a minimum every smooth loss looks
# like a quadratic bowl,
# $L(\theta) = \tfrac12 \theta^\top H \theta$, and the eigenvalues of the curvature matrix $H$
# set the rules. Ours (`Quadratic.ill_conditioned()` in `course_utils.mathutils`) is a long,
# narrow valley — curvature 1 along one axis and 20 across it, tilted by 30° — the shape that
# real losses have in many directions at once. Gradient descent is stable only for
# $\alpha < 2/\lambda_{\max}$, and along the flat axis it shrinks the distance to the minimum by a
# factor $1 - \alpha\lambda_{\min}$ per step: the learning rate is a compromise between the two.

# %%
bowl = Quadratic.ill_conditioned()
eigenvalues = np.linalg.eigvalsh(bowl.H)
START = np.array([-4.0, 3.0])
STEPS_2D = 50
limit = 2 / eigenvalues.max()
print(f"curvatures (eigenvalues of H): {eigenvalues.round(3)}; condition number "
      f"{eigenvalues.max() / eigenvalues.min():.0f}; stable for α < 2/λmax = {limit:.3f}")  # fmt: skip

learning_rates = {"too small": 0.01, "good": 0.09, "too large": 0.102}
paths = {}
for name, lr in learning_rates.items():
    paths[name] = run_optimizer(bowl.grad, START, SGD(lr), STEPS_2D)
    final = bowl.loss(paths[name][-1])
    print(
        f"{name:<9} α = {lr:<6}: loss {bowl.loss(START):.1f} → {final:.3g} after {STEPS_2D} steps"
    )


# %%
def contour(ax, surface, xlim, ylim, levels):
    gx, gy = np.meshgrid(np.linspace(*xlim, 300), np.linspace(*ylim, 300))
    grid = np.stack([gx, gy], axis=-1)
    ax.contour(gx, gy, surface.loss(grid), levels=levels, colors="0.65", linewidths=0.7)
    ax.plot(*surface.minimum, "*", color="black", ms=12)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_xlabel("θ₁")
    ax.set_ylabel("θ₂")


colors = {"too small": "tab:blue", "good": "tab:green", "too large": "tab:red"}
fig, axes = plt.subplots(2, 2, figsize=(12, 9))
for ax, (name, path) in zip(axes.flat, paths.items(), strict=False):
    contour(ax, bowl, (-6, 6), (-6, 6), levels=np.geomspace(0.05, 1000, 16))
    ax.plot(path[:, 0], path[:, 1], ".-", ms=3, lw=0.8, color=colors[name])
    ax.plot(*START, "o", color="black")
    ax.set_title(
        f"{name}: α = {learning_rates[name]}, {STEPS_2D} steps from ({START[0]:g}, {START[1]:g})"
    )
ax = axes[1, 1]
for name, path in paths.items():
    ax.semilogy(bowl.loss(path), color=colors[name], label=f"{name} (α = {learning_rates[name]})")
ax.set_xlabel("step")
ax.set_ylabel("loss (log scale)")
ax.set_title("Loss per step")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Too small: every step is safe and the loss falls — slowly, still far from the minimum after 50
# steps. Too large (just above $2/\lambda_{\max}$): the steep direction overshoots a little more
# at every step, zig-zagging out of the valley while the loss grows. Good: just below the limit,
# the steep direction still oscillates but shrinks, and the flat direction moves as fast as
# stability allows. The sensible learning rates form a window whose upper edge is set by the
# *steepest* direction and whose speed is set by the *flattest* — this is why the learning rate
# is the first hyper-parameter to tune (chapter 3 measured it on MiniLM), and the window is what
# exercise 3 asks you to find.

# %% [markdown]
# ## 4.6 SGD, momentum and Adam
#
# Gradient descent only looks at the current gradient. Two refinements, both written out in
# `course_utils.mathutils`:
#
# - **Momentum** keeps a running sum of past gradients, $v \leftarrow \beta v + \nabla L$,
#   $\theta \leftarrow \theta - \alpha v$: along the valley the gradients agree and add up; across
#   it they alternate in sign and cancel.
# - **Adam** divides each coordinate's step by a running root-mean-square of its gradients,
#   $\theta \leftarrow \theta - \alpha\, \hat m / (\sqrt{\hat v} + \epsilon)$, so every parameter
#   moves by about $\alpha$ per step whatever the scale of its gradient. (It is the default for
#   fine-tuning Transformers, as AdamW with decoupled weight decay.)
#
# First, our update rules are exactly PyTorch's: 50 steps on the bowl, same learning rates, same
# path.


# %%
def torch_path(optimizer_class, steps, **kwargs):
    theta = torch.tensor(START, requires_grad=True)
    H_t = torch.tensor(bowl.H)
    optimizer = optimizer_class([theta], **kwargs)
    for _ in range(steps):
        optimizer.zero_grad()
        (0.5 * theta @ H_t @ theta).backward()
        optimizer.step()
    return theta.detach().numpy()


pairs = {
    "SGD": (SGD(0.05), torch.optim.SGD, {"lr": 0.05}),
    "momentum": (Momentum(0.02, 0.9), torch.optim.SGD, {"lr": 0.02, "momentum": 0.9}),
    "Adam": (Adam(0.3), torch.optim.Adam, {"lr": 0.3}),
}
for name, (ours, torch_class, kwargs) in pairs.items():
    gap = np.abs(
        run_optimizer(bowl.grad, START, ours, 50)[-1] - torch_path(torch_class, 50, **kwargs)
    )
    assert gap.max() < 1e-12
    print(
        f"{name:<9} ours vs torch.optim.{torch_class.__name__}({kwargs}): max difference {gap.max():.1e}"
    )

# %% [markdown]
# A fair race gives every optimiser its own best settings. For each one we try 25 learning rates
# from $10^{-4}$ to 1 (for momentum also $\beta = 0.5$ and $0.9$) and keep the setting with the
# lowest final loss, on two surfaces: the tilted bowl (100 steps) and the Rosenbrock function
# $L(x, y) = (1 - x)^2 + 100\,(y - x^2)^2$ (2,000 steps), a curved valley with a nearly flat
# floor, a classic hard case.

# %%
surfaces = {
    "tilted bowl": (bowl, np.array([-4.0, 3.0]), 100),
    "Rosenbrock": (Rosenbrock(), np.array([-1.5, 2.0]), 2000),
}
lr_grid = np.geomspace(1e-4, 1.0, 25)
candidates = {  # (setting, a function that makes a fresh optimiser); for momentum β is tuned too
    "SGD": [(f"α = {lr:.2g}", partial(SGD, lr)) for lr in lr_grid],
    "momentum": [
        (f"α = {lr:.2g}, β = {beta}", partial(Momentum, lr, beta))
        for lr in lr_grid
        for beta in (0.5, 0.9)
    ],
    "Adam": [(f"α = {lr:.2g}", partial(Adam, lr)) for lr in lr_grid],
}
race = {}  # (surface, optimiser) -> (best setting, its path)
for surface_name, (surface, start, steps) in surfaces.items():
    for opt_name, options in candidates.items():
        best_loss = np.inf
        for setting, make in options:
            path = run_optimizer(surface.grad, start, make(), steps)
            final = surface.loss(path[-1])  # nan if it diverged
            if final < best_loss:
                best_loss, race[surface_name, opt_name] = final, (setting, path)
        setting = race[surface_name, opt_name][0]
        print(f"{surface_name:<12} {opt_name:<9} best {setting:<17}: final loss {best_loss:.2e}")

# %%
opt_colors = dict(zip(candidates, ["tab:blue", "tab:orange", "tab:green"], strict=True))
fig, axes = plt.subplots(2, 2, figsize=(12, 9))
limits = {"tilted bowl": ((-5, 5), (-4, 4)), "Rosenbrock": ((-2, 2), (-1, 3))}
level_sets = {
    "tilted bowl": np.geomspace(0.05, 300, 14),
    "Rosenbrock": np.geomspace(0.01, 2000, 16),
}
for row, (surface_name, (surface, _, _)) in enumerate(surfaces.items()):
    contour(axes[row, 0], surface, *limits[surface_name], levels=level_sets[surface_name])
    for opt_name in candidates:
        setting, path = race[surface_name, opt_name]
        label = f"{opt_name}, {setting}"
        axes[row, 0].plot(
            path[:, 0], path[:, 1], "-", lw=1.2, color=opt_colors[opt_name], label=label
        )
        axes[row, 1].semilogy(
            np.maximum(surface.loss(path), 1e-30), color=opt_colors[opt_name], label=label
        )
    axes[row, 0].set_title(f"{surface_name}: paths with each optimiser's best setting")
    axes[row, 0].legend(fontsize=8, loc="lower right")
    axes[row, 1].set_title(f"{surface_name}: loss per step")
    axes[row, 1].set_xlabel("step")
    axes[row, 1].set_ylabel("loss (log scale)")
    axes[row, 1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
for surface_name, (surface, _, steps) in surfaces.items():
    finals = {opt: surface.loss(race[surface_name, opt][1][-1]) for opt in candidates}
    ranking = " < ".join(
        f"{opt} ({loss:.1e})" for opt, loss in sorted(finals.items(), key=lambda kv: kv[1])
    )
    print(f"{surface_name}, final loss after {steps} steps: {ranking}")

# %% [markdown]
# What the race shows:
#
# - On the **Rosenbrock** valley plain gradient descent is held back by the steep walls, which cap
#   its learning rate, and crawls along the flat, curved floor; momentum builds up speed along
#   the floor and Adam rescales each coordinate's step, and both end many orders of magnitude
#   lower.
# - On the **tilted bowl** momentum wins too, but only with the *small* $\beta$: with
#   $\beta = 0.9$ it keeps overshooting on a valley this short, so $\beta$ is a hyper-parameter
#   like $\alpha$. Adam does not win here: its steps stay about $\alpha$ long even as the gradient
#   vanishes, so near the minimum it hovers instead of settling (in practice a decaying
#   learning-rate schedule fixes that), and its per-coordinate scaling does not help a valley
#   that is tilted away from the axes.
#
# No optimiser is best everywhere, and each needs its own settings: that is why the course's
# experiments tune the learning rate for each method rather than reuse one. (Adam's strength is
# on real networks, whose parameters have gradients of very different scales.)

# %% [markdown]
# ## 4.7 A logistic-regression head on frozen MiniLM features, by hand
#
# Now the real thing, at the scale of chapter 3's "head only" strategy: freeze MiniLM, represent
# each review by its **mean-pooled** last-layer token vectors (384 numbers), and train a linear
# classifier on top with the mathematics of this chapter. With two classes, softmax becomes the
# sigmoid $p = \sigma(w^\top x + b)$ and the gradient is again "prediction minus target":
#
# $$L(w, b) = -\frac1N\sum_n \big[y_n \log p_n + (1 - y_n)\log(1 - p_n)\big] + \frac{\lambda}{2}\lVert w\rVert^2,
# \qquad \nabla_w L = \frac1N X^\top (p - y) + \lambda w, \qquad \frac{\partial L}{\partial b} = \frac1N\sum_n (p_n - y_n).$$
#
# First the features: MiniLM runs once over the reviews; nothing is trained in it.

# %%
t0 = time.perf_counter()
encoder, tokenizer = load_encoder(ENCODER, device=DEVICE)


def mean_pooled(texts, batch_size=64):
    """Frozen MiniLM features: the mean of the last layer's vectors over the real tokens."""
    rows = []
    for i in range(0, len(texts), batch_size):
        batch = tokenizer(texts[i : i + batch_size], padding=True, truncation=True,
                          max_length=128, return_tensors="pt").to(encoder.device)  # fmt: skip
        with torch.no_grad():
            hidden = encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        rows.append(((hidden * mask).sum(1) / mask.sum(1)).double().cpu())
    return torch.cat(rows).numpy()


reviews = load_movie_reviews()  # each split's rows are already in a seeded, shuffled order
train_split = reviews["train"].select(range(TRAIN_N))
test_split = reviews["test"]
if TEST_N is not None:  # a random subset: the first TEST_N rows
    test_split = test_split.select(range(TEST_N))
X_train, y_train = (
    mean_pooled(list(train_split["text"])),
    np.array(list(train_split["label"]), dtype=np.float64),
)
X_test = mean_pooled(list(test_split["text"]))
y_test = np.array(list(test_split["label"]), dtype=np.float64)
embed_seconds = time.perf_counter() - t0
print(f"features: train {X_train.shape}, test {X_test.shape}; {embed_seconds:.1f} s")

# %% [markdown]
# Each feature is standardised with the *training* mean and standard deviation (so the test set
# stays unseen). This is the lesson of 4.5 applied: features on very different scales make a
# narrow valley. The learning rate then comes from the curvature, as in 4.2: the logistic loss's
# Hessian is at most $\frac14 X^\top X/N + \lambda I$, so $\alpha = 1/\lambda_{\max}$ of that
# matrix is safely below the $2/\lambda_{\max}$ limit.

# %%
mean, std = X_train.mean(axis=0), X_train.std(axis=0) + 1e-8
Xs_train, Xs_test = (X_train - mean) / std, (X_test - mean) / std
LAMBDA = 1e-2  # L2 regularisation strength (weight decay)
GD_STEPS = 500
smoothness = 0.25 * np.linalg.eigvalsh(Xs_train.T @ Xs_train / len(Xs_train)).max() + LAMBDA
LR_HEAD = 1 / smoothness
print(
    f"largest curvature ≤ {smoothness:.2f} → learning rate α = {LR_HEAD:.4f}, {GD_STEPS} full-batch steps"
)


def sigmoid(t):
    return 1 / (1 + np.exp(-t))


def logistic_loss(w, b, X, y):
    z = X @ w + b
    # log(1 + e^z) - y z is the binary cross-entropy written stably with logaddexp
    return float(np.mean(np.logaddexp(0, z) - y * z) + LAMBDA / 2 * w @ w)


def logistic_grads(w, b, X, y):
    residual = sigmoid(X @ w + b) - y  # p − y
    return X.T @ residual / len(y) + LAMBDA * w, residual.mean()


w, b = np.zeros(Xs_train.shape[1]), 0.0
hand_losses = [logistic_loss(w, b, Xs_train, y_train)]
for _ in range(GD_STEPS):
    grad_w, grad_b = logistic_grads(w, b, Xs_train, y_train)
    w, b = w - LR_HEAD * grad_w, b - LR_HEAD * grad_b  # θ ← θ − α ∇L
    hand_losses.append(logistic_loss(w, b, Xs_train, y_train))

# the gradient itself, checked once more against finite differences, at random weights (not at
# the minimum: there the gradient is almost 0 and a relative error would measure only noise)
w_random = np.random.default_rng(SEED).normal(size=len(w)) * 0.1
err_w = relative_error(logistic_grads(w_random, b, Xs_train, y_train)[0],
                       numerical_gradient(lambda v: logistic_loss(v, b, Xs_train, y_train), w_random))  # fmt: skip
assert err_w < TOL
print(f"hand-written GD: loss {hand_losses[0]:.4f} → {hand_losses[-1]:.4f} in {GD_STEPS} steps; "
      f"gradient check {err_w:.1e}")  # fmt: skip

# %% [markdown]
# The same model with PyTorch's machinery: an `nn.Linear(384, 1)` in float64 started at zero,
# `BCEWithLogitsLoss`, and `torch.optim.SGD` with the same learning rate. PyTorch's
# `weight_decay` adds $\lambda w$ to the gradient — our $\frac{\lambda}{2}\lVert w\rVert^2$ — but
# to *every* parameter it is given, so the bias goes in a second parameter group without it.

# %%
head = torch.nn.Linear(Xs_train.shape[1], 1, dtype=torch.float64)
torch.nn.init.zeros_(head.weight)
torch.nn.init.zeros_(head.bias)
optimizer = torch.optim.SGD(
    [
        {"params": [head.weight], "weight_decay": LAMBDA},
        {"params": [head.bias], "weight_decay": 0.0},
    ],
    lr=LR_HEAD,
)
X_t, y_t = torch.tensor(Xs_train), torch.tensor(y_train)
bce = torch.nn.BCEWithLogitsLoss()
torch_losses = []
for _ in range(GD_STEPS):
    optimizer.zero_grad()
    loss = bce(head(X_t).squeeze(1), y_t)
    torch_losses.append(loss.item() + LAMBDA / 2 * head.weight.pow(2).sum().item())
    loss.backward()
    optimizer.step()
w_torch = head.weight.detach().numpy()[0]
b_torch = head.bias.item()


def accuracy(w, b, X, y):
    return float(np.mean((X @ w + b > 0) == (y == 1)))


acc_hand, acc_torch = accuracy(w, b, Xs_test, y_test), accuracy(w_torch, b_torch, Xs_test, y_test)
weight_gap = max(np.abs(w - w_torch).max(), abs(b - b_torch))
print(f"weights: max |hand − torch| = {weight_gap:.1e} (weights of size up to {np.abs(w).max():.2f}); "
      f"relative error {relative_error(np.append(w, b), np.append(w_torch, b_torch)):.1e}")  # fmt: skip
print(f"test accuracy on {len(y_test)} reviews: hand-written {acc_hand:.1%}, torch.optim {acc_torch:.1%}; "
      f"train accuracy {accuracy(w, b, Xs_train, y_train):.1%}")  # fmt: skip
assert weight_gap < 1e-8 and acc_hand == acc_torch

# %%
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(hand_losses[:-1], lw=3, alpha=0.5, label="hand-written gradient descent (NumPy)")
ax.plot(torch_losses, "--", color="black", lw=1, label="torch.optim.SGD + autograd")
ax.set_xlabel("step (full batch)")
ax.set_ylabel("training loss (cross-entropy + L2)")
ax.set_title(f"Logistic regression on frozen MiniLM features ({len(y_train)} reviews)")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# The two curves are one: the hand-written update and `torch.optim.SGD` agree to float64
# rounding, weight by weight, and classify every test review the same way. There is no magic in
# `loss.backward()` and `optimizer.step()` — only the chain rule and
# $\theta \leftarrow \theta - \alpha\nabla L$, done for you. This is chapter 3's "head only" strategy (feature extraction,
# or linear probing) in its simplest form: the frozen features carry a good part of the
# sentiment; chapters 3 and 5 show how much fine-tuning the encoder itself adds.

# %% [markdown]
# ## 4.8 The article's training code (§4.6 and §5.2), run and fixed
#
# The article's §4.6 turns the mathematics into TensorFlow code, and §5.2 into a fine-tuning
# script. Neither runs (`tf.keras.applications.BERT` does not exist), but four of their choices are
# choices a learner could copy, and each has a measurable cost. We measure them on the
# logistic-regression head of 4.7 — the same standardised MiniLM features, so each run takes
# milliseconds — in PyTorch, next to the fix.
#
# | the article writes | what it does | the fix |
# | --- | --- | --- |
# | `-tf.reduce_sum(y_true * tf.log(y_pred))` (§4.6) | `tf.log` is TensorFlow 1 (TF2: `tf.math.log`); the log of a probability that rounded to 0 is $-\infty$ | a loss on the logits (`BCEWithLogitsLoss`, `cross_entropy`) |
# | the same `reduce_sum` | a *sum* over the batch: the gradient, and so the step, grows with the batch size | the mean (every framework's default) |
# | `for epoch in range(num_epochs)`: one `apply_gradients` on all the data (§4.6) | one update per epoch: 10 epochs are 10 steps | mini-batches: many updates per epoch |
# | `optimizer = Adam(learning_rate)` inside `fine_tune`, called for every example (§5.2) | a new Adam at every step: its moments are always zero | create the optimiser once, before the loop |
#
# **1. The log of a rounded probability.** In float32 a sigmoid saturates: a logit of 20 gives a
# probability of exactly 1, so $\log(1 - p)$ for a negative example is $-\infty$ and the gradient
# is NaN; the same loss computed from the logit is finite.

# %% tags=["nbval-check-output"]
logit = torch.tensor([20.0], requires_grad=True)  # a confident, wrong prediction for a negative
target = torch.tensor([0.0])
p32 = torch.sigmoid(logit)
naive = -(target * torch.log(p32) + (1 - target) * torch.log(1 - p32))  # the article's formula
naive.backward()
naive_grad, logit.grad = logit.grad.item(), None
print(f"float32 sigmoid(20) = {p32.item()!r}; log-of-probability loss = {naive.item()}, "
      f"gradient = {naive_grad}")  # fmt: skip
stable = torch.nn.functional.binary_cross_entropy_with_logits(logit, target)
stable.backward()
stable_grad = logit.grad.item()
print(f"loss from the logit = {stable.item():.4f}, gradient = {stable_grad:.4f}")

# %% [markdown]
# **2. A summed loss ties the step to the batch size.** The gradient of a sum over $N$ examples
# is $N$ times the gradient of their mean, so with the same learning rate every step is $N$ times
# longer: a learning rate that suits one batch size is $N$ times too large for it. Below: 100
# full-batch gradient-descent steps with 4.7's learning rate, on the first 300 and on all the
# training features, with the mean and with the sum; for each, the training loss, the size of the
# weights and the test accuracy (± its binomial standard error).


# %%
def logistic_run(X, y, lr, steps, reduction="mean", batch_size=None, optimizer="sgd",
                 rebuild_every_step=False, seed=SEED):  # fmt: skip
    """Train 4.7's linear head with torch. Returns the training loss (mean, on all of X) after
    each step, the final (w, b), and the mean absolute change of a weight at each step."""
    torch.manual_seed(seed)
    head = torch.nn.Linear(X.shape[1], 1, dtype=torch.float64)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    X_t, y_t = torch.tensor(X), torch.tensor(y)
    make = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[optimizer]
    opt = make(head.parameters(), lr=lr)
    losses, moves, order = [], [], np.arange(len(y))
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        if batch_size is not None and len(order) < batch_size:
            order = np.concatenate([order, rng.permutation(len(y))])
        if batch_size is None:
            rows = slice(None)
        else:
            rows, order = order[:batch_size], order[batch_size:]
        if rebuild_every_step:
            opt = make(head.parameters(), lr=lr)  # the article's §5.2: a fresh optimiser
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            head(X_t[rows]).squeeze(1), y_t[rows], reduction=reduction
        )
        before = head.weight.detach().clone()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            moves.append((head.weight - before).abs().mean().item())
            full = torch.nn.functional.binary_cross_entropy_with_logits(head(X_t).squeeze(1), y_t)
        losses.append(full.item())
    w_t, b_t = head.weight.detach().numpy()[0], head.bias.item()
    return np.array(losses), (w_t, b_t), np.array(moves)


def binomial_se(p, n):
    return float(np.sqrt(p * (1 - p) / n))


summed = {}
for n in (300, len(y_train)):
    for reduction in ("mean", "sum"):
        losses, (w_s, b_s), _ = logistic_run(Xs_train[:n], y_train[:n], LR_HEAD, 100, reduction)
        acc = accuracy(w_s, b_s, Xs_test, y_test)
        summed[n, reduction] = {"loss": losses[-1], "norm": np.linalg.norm(w_s), "acc": acc}
        print(f"N = {n:>5}, {reduction:>4} loss, α = {LR_HEAD:.3f}: training loss after 100 steps "
              f"{losses[-1]:.3g}, |w| = {np.linalg.norm(w_s):6.1f}, test accuracy {acc:.1%} "
              f"± {binomial_se(acc, len(y_test)):.1%}")  # fmt: skip
n_all = len(y_train)
norm_ratio = summed[n_all, "sum"]["norm"] / summed[n_all, "mean"]["norm"]
acc_gap = summed[n_all, "sum"]["acc"] - summed[n_all, "mean"]["acc"]
gap_se = np.sqrt(2) * binomial_se(summed[n_all, "mean"]["acc"], len(y_test))
verdict = "within noise" if abs(acc_gap) < 2 * gap_se else ("lower" if acc_gap < 0 else "higher")
print(f"With the sum on all {n_all} reviews the weights end {norm_ratio:.1f}× as large as with "
      f"the mean; test accuracy {100 * acc_gap:+.1f} points ({verdict}: 2 standard errors of "
      f"the difference = {200 * gap_se:.1f} points).")  # fmt: skip

# %% [markdown]
# The logistic loss never turns into NaN with the sum: its gradient is bounded (an example's
# contribution is at most $\lVert x\rVert$), so steps $N$ times too long cannot run away to
# infinity. They fling the weights instead (the size of $w$ above): on 300 reviews the head
# memorises its training set (training loss near zero), on all of them the steps are so long that
# the run jumps across the valley, with a training loss far above the mean's and the test accuracy
# printed above. A loss whose gradient grows with the error is less forgiving. The squared error of
# 4.5's bowl, summed over $N$ copies of itself, has $N$ times the curvature; 4.5's "good" learning
# rate was stable only below $2/\lambda_{\max}$, so two copies are already too many:

# %%
lr_good = learning_rates["good"]
for copies in (1, 2, 10):
    summed_path = run_optimizer(
        lambda theta, k=copies: k * bowl.grad(theta), START, SGD(lr_good), STEPS_2D
    )
    print(f"sum over {copies:>2} copies of the bowl, α = {lr_good}: effective step "
          f"{copies * lr_good:.2f} (stable below {limit:.3f}); loss per copy "
          f"{bowl.loss(START):.1f} → {bowl.loss(summed_path[-1]):.3g} after {STEPS_2D} steps")  # fmt: skip

# %% [markdown]
# With the mean, one learning rate serves every batch size; with the sum it must be rescaled to
# $\alpha/N$ whenever the batch size or the data changes.
#
# **3. One update per epoch.** The article's loop calls `apply_gradients` once per epoch on the
# whole training set, so `num_epochs=10` means 10 parameter updates. Here: 10 epochs as 10
# full-batch steps, against 10 epochs of mini-batches of 32 (about a hundred updates per epoch),
# with the same learning rate.

# %%
epochs_demo = 10
steps_per_epoch = int(np.ceil(len(y_train) / 32))
full_batch, (w_fb, b_fb), _ = logistic_run(Xs_train, y_train, LR_HEAD, epochs_demo)
mini_batch, (w_mb, b_mb), _ = logistic_run(Xs_train, y_train, LR_HEAD, epochs_demo * steps_per_epoch,
                                        batch_size=32)  # fmt: skip
acc_full_batch = accuracy(w_fb, b_fb, Xs_test, y_test)
acc_mini_batch = accuracy(w_mb, b_mb, Xs_test, y_test)
print(f"{epochs_demo} epochs, one full-batch step each: training loss {full_batch[-1]:.4f}, "
      f"test accuracy {acc_full_batch:.1%} ± {binomial_se(acc_full_batch, len(y_test)):.1%} "
      f"({epochs_demo} updates)")  # fmt: skip
print(f"{epochs_demo} epochs of mini-batches of 32: training loss {mini_batch[-1]:.4f}, "
      f"test accuracy {acc_mini_batch:.1%} ± {binomial_se(acc_mini_batch, len(y_test)):.1%} "
      f"({epochs_demo * steps_per_epoch} updates)")  # fmt: skip
print(f"(4.7's {GD_STEPS} full-batch steps reached {acc_hand:.1%})")
epoch_gap = acc_full_batch - acc_mini_batch
epoch_se = np.sqrt(2) * binomial_se(acc_mini_batch, len(y_test))
epoch_verdict = "within noise" if abs(epoch_gap) < 2 * epoch_se else "beyond noise"
print(f"full-batch − mini-batch: {100 * epoch_gap:+.1f} points ({epoch_verdict}; 2 standard "
      f"errors of the difference = {200 * epoch_se:.1f} points)")  # fmt: skip

# %% [markdown]
# Both runs computed the same number of example gradients (10 passes over the data), so this is a
# comparison at equal compute. On this small convex problem, with the learning rate set from its
# curvature (4.7), 10 full-batch steps are already enough: compare the verdict above. The
# article's loop is wasteful rather than wrong here; it fails where far more than 10 updates are
# needed, as when a whole network is fine-tuned (chapter 5 makes hundreds of updates per epoch;
# not measured in this chapter) and where a full batch does not fit in memory at all.

# %% [markdown]
# **4. An Adam rebuilt at every step.** A new `Adam` has $m = v = 0$; after one step its
# bias-corrected moments are $\hat m = g$ and $\hat v = g^2$, so the step is
# $\alpha\, g/(\lvert g\rvert + \epsilon) \approx \alpha \operatorname{sign}(g)$: every coordinate
# moves by $\alpha$, whatever its gradient says about *how far* to go. Adam's two running
# averages, the whole point of it, are thrown away. We check the sign rule on the first step, then
# run 300 mini-batch steps of a persistent Adam and of a rebuilt one, same learning rate, and
# measure how far a weight moves per step.

# %% tags=["nbval-check-output"]
g_demo = np.array([3.0, -0.02, 1e-3])
rebuilt_step = Adam(0.1).step(np.zeros(3), g_demo)  # course_utils.mathutils.Adam, fresh
print(f"gradient {g_demo} -> first step of a fresh Adam(α = 0.1): {rebuilt_step.round(6)}")

# %%
ADAM_LR, ADAM_STEPS = 0.01, 300
adam_runs, adam_moves, adam_accs = {}, {}, {}
for name, rebuild in (("persistent Adam", False), ("Adam rebuilt every step", True)):
    losses, (w_a, b_a), moves = logistic_run(Xs_train, y_train, ADAM_LR, ADAM_STEPS,
                                             optimizer="adam", batch_size=32,
                                             rebuild_every_step=rebuild)  # fmt: skip
    adam_runs[name], adam_moves[name] = losses, moves
    adam_accs[name] = accuracy(w_a, b_a, Xs_test, y_test)
    print(f"{name:<24} α = {ADAM_LR}: training loss {losses[-1]:.4f}, test accuracy "
          f"{adam_accs[name]:.1%} ± {binomial_se(adam_accs[name], len(y_test)):.1%}; mean |Δw| "
          f"per step over the last 100 steps {moves[-100:].mean():.5f}")  # fmt: skip
rebuilt_move = adam_moves["Adam rebuilt every step"][-100:].mean()
kept_move = adam_moves["persistent Adam"][-100:].mean()
print(f"Rebuilt: every weight moves by {rebuilt_move / ADAM_LR:.3f} α per step, whatever its "
      f"gradient; persistent: {kept_move / ADAM_LR:.3f} α on average.")  # fmt: skip

fig, ax = plt.subplots(figsize=(7, 4))
for name, losses in adam_runs.items():
    ax.plot(losses, label=name)
ax.set_xlabel("step (mini-batches of 32)")
ax.set_ylabel("training loss (all training reviews)")
ax.set_title(f"Adam kept vs rebuilt at every step (α = {ADAM_LR})")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# The rebuilt optimiser is sign-gradient descent with a fixed step: every weight moves by
# exactly $\alpha$ at every step (the ratio printed above), however small or noisy its gradient,
# while the persistent Adam shrinks the steps of weights whose gradients are small or keep
# changing sign. Which of the two ends with the lower loss after a fixed number of steps depends on
# $\alpha$ and the budget (compare the two printed losses, and the test accuracies with their
# standard errors); what is lost in every case is Adam's per-weight step size, and with it the
# meaning of the learning rate. The fix costs nothing: create the optimiser once, outside the
# loop, as `course_utils.training.train` does.

# %% [markdown]
# ## Exercises
#
# Fill in each function (or value), run its check: ✅ all hidden cases passed, ❌ shows the
# failing input, what was expected and what came back. `.hint()` reveals one hint at a time;
# `.solution()` prints the reference solution (try first!). On the course site the solution is in
# a collapsed block under each exercise.

# %%
ex = chapter_exercises(4)
ex

# %% [markdown]
# ### Exercise 1 — the softmax-cross-entropy gradient
#
# Write `softmax_cross_entropy(logits, labels)` for a batch: `logits` is an $N \times K$ float
# array, `labels` holds $N$ integer classes. Return the tuple `(loss, grad)`: the **mean**
# cross-entropy (a float) and its gradient with respect to `logits` (an $N \times K$ array). It
# must not overflow: one hidden case has logits in the thousands. (Use NumPy only; `softmax`
# from `course_utils.mathutils` is allowed.)


# %%
def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["softmax_cross_entropy"].hint()  # uncomment for a hint
ex["softmax_cross_entropy"].check(softmax_cross_entropy)

# %% [markdown]
# <details>
# <summary>Solution to exercise 1 (<code>course_utils/solutions/ch04.py</code>)</summary>
#
# ```python
# def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
#     """Mean cross-entropy of a batch and its gradient with respect to the logits, (P - Y) / N."""
#     n, k = logits.shape
#     shifted = logits - logits.max(axis=1, keepdims=True)  # no overflow in exp
#     log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
#     loss = -log_probs[np.arange(n), labels].mean()
#     grad = (softmax(logits) - np.eye(k)[labels]) / n  # p - y, averaged over the batch
#     return float(loss), grad
# ```
#
# </details>

# %% [markdown]
# ### Exercise 2 — one backpropagation step
#
# The network of 4.4 with **ReLU** instead of tanh: $h = \max(0, XW_1 + b_1)$,
# $Z = hW_2 + b_2$, mean cross-entropy. Write `train_step(params, X, y, lr)` that runs the forward
# pass, backpropagates, and takes one gradient-descent step. Return `(loss, new_params)`: the loss
# *before* the step and a new dict with the keys `"W1"`, `"b1"`, `"W2"`, `"b2"`. Do not modify
# `params` in place (the hidden inputs are read-only: an in-place `-=` on them raises). The
# derivative of ReLU is 1 where its input is positive, else 0.


# %%
def train_step(params: dict, X: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, dict]:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["train_step"].hint()  # uncomment for a hint
ex["train_step"].check(train_step)

# %% [markdown]
# <details>
# <summary>Solution to exercise 2 (<code>course_utils/solutions/ch04.py</code>)</summary>
#
# ```python
# def train_step(params: dict, X: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, dict]:
#     """Forward, backward and one gradient-descent step of the two-layer ReLU network."""
#     # forward
#     A = X @ params["W1"] + params["b1"]
#     h = np.maximum(A, 0)  # ReLU
#     Z = h @ params["W2"] + params["b2"]
#     loss, G_Z = softmax_cross_entropy(Z, y)
#     # backward: the chain rule, from the loss to the first layer
#     grads = {"W2": h.T @ G_Z, "b2": G_Z.sum(axis=0)}
#     G_h = G_Z @ params["W2"].T
#     G_A = G_h * (A > 0)  # ReLU'(a) = 1 where a > 0, else 0
#     grads["W1"] = X.T @ G_A
#     grads["b1"] = G_A.sum(axis=0)
#     # update: a new dict, params unchanged
#     new_params = {name: params[name] - lr * grads[name] for name in params}
#     return loss, new_params
# ```
#
# </details>

# %% [markdown]
# ### Exercise 3 — pick a learning rate for a new valley
#
# Here is a valley this chapter has not shown you: curvatures 0.5 and 40, tilted by −50°. Set
# `LEARNING_RATE` so that plain gradient descent from `VALLEY_START` = (3, 4) brings the loss
# **below 10⁻⁴ in 200 steps**. The checker runs
# `run_optimizer(valley.grad, VALLEY_START, SGD(LEARNING_RATE), 200)`; you can run it too before
# you answer. Work it out from the curvatures first (4.5), then check.

# %%
valley = Quadratic.ill_conditioned(curvatures=(0.5, 40.0), angle_deg=-50.0)
VALLEY_START = np.array([3.0, 4.0])
LEARNING_RATE = ...  # your answer, a float

# %% tags=["nbval-check-output"]
# ex["learning_rate"].hint()  # uncomment for a hint
ex["learning_rate"].check(LEARNING_RATE)

# %% [markdown]
# <details>
# <summary>Solution to exercise 3 (<code>course_utils/solutions/ch04.py</code>)</summary>
#
# ```python
# def learning_rate() -> float:
#     """Just below the stability limit 2 / (largest curvature) = 2 / 40 = 0.05: the flat
#     direction (curvature 0.5) then shrinks as fast as stability allows."""
#     return 0.048
# ```
#
# </details>

# %% [markdown]
# ### Exercise 4 — an experiment: the optimiser rebuilt at every step
#
# Run the article's §5.2 mistake yourself on the bowl of 4.5: starting from `START` = (−4, 3),
# take 20 steps, each with a **new** `Adam(0.05)` (`theta = Adam(0.05).step(theta,
# bowl.grad(theta))`). Measure the mean absolute change of a coordinate per step over the 20
# steps, then choose the explanation of what you see:
#
# - `"a"`: the gradient shrinks near the minimum, so the steps shrink too;
# - `"b"`: a fresh Adam's first step is lr · g / |g| = lr · sign(g): every coordinate moves by lr;
# - `"c"`: rebuilding Adam changes nothing: its state is recomputed from the gradient anyway.
#
# Set `REBUILT_ADAM = (your measured mean step, "a" | "b" | "c")`.

# %%
REBUILT_ADAM = ...  # (a float you measured, a letter)

# %% tags=["nbval-check-output"]
# ex["rebuilt_adam"].hint()  # uncomment for a hint
ex["rebuilt_adam"].check(REBUILT_ADAM)

# %% [markdown]
# <details>
# <summary>Solution to exercise 4 (<code>course_utils/solutions/ch04.py</code>)</summary>
#
# ```python
# def rebuilt_adam_experiment() -> tuple[float, str]:
#     """Run Adam(0.05) rebuilt before each of 20 steps on the bowl from (-4, 3); return the mean
#     absolute change of a coordinate per step, and the letter of the explanation."""
#     theta, path = BOWL_START.copy(), [BOWL_START.copy()]
#     for _ in range(REBUILT_STEPS):
#         theta = Adam(REBUILT_LR).step(theta, BOWL.grad(theta))  # a new optimiser every step
#         path.append(theta)
#     mean_step = float(np.abs(np.diff(np.array(path), axis=0)).mean())
#     return mean_step, "b"
# ```
#
# </details>

# %% [markdown]
# ## Summary
#
# The numbers behind each point are computed above; here they are once more, from the same
# variables.

# %% tags=["course-summary"]
minutes = (time.perf_counter() - notebook_start) / 60
article_end, gd_end = runs_1d[0.0][0][-1], runs_1d[0.0][1][-1]
print(
    f"• The article's rule θ + α(L − θ) ends at θ = {article_end:.3f} (loss {loss_1d(article_end):.3f}); "
    f"gradient descent at θ = {gd_end:.3f} (loss {loss_1d(gd_end):.3f}), the least-squares optimum."
)
print(
    f"• Gradient checks (float64): softmax + cross-entropy {max(errors.values()):.1e}; two-layer network "
    f"{max_fd:.1e} vs finite differences, {max_torch:.1e} vs torch.autograd (all < {TOL:g})."
)
print(
    f"• Learning rate on the bowl (stable below {limit:.3f}): "
    + ", ".join(
        f"{n} α = {lr} → loss {bowl.loss(paths[n][-1]):.2g}" for n, lr in learning_rates.items()
    )
    + "."
)
print(
    f"• Logistic-regression head on frozen {ENCODER} features ({len(y_train)} train reviews): test accuracy "
    f"{acc_hand:.1%} by hand = {acc_torch:.1%} with torch.optim (weights within {weight_gap:.0e})."
)
print(
    f"• The article's training code: a float32 log-of-probability loss of {naive.item()} (gradient "
    f"{naive_grad}) where the loss from the logit is {stable.item():.2f} (gradient {stable_grad:.2f}); summed loss on "
    f"{n_all} reviews → weights {norm_ratio:.1f}× as large as with the mean, test accuracy "
    f"{100 * acc_gap:+.1f} points ({verdict}); {epochs_demo} full-batch updates {acc_full_batch:.1%} vs {epochs_demo * steps_per_epoch} "
    f"mini-batch updates {acc_mini_batch:.1%}; a rebuilt Adam moves every weight by "
    f"{rebuilt_move / ADAM_LR:.2f} α per step, a persistent one by {kept_move / ADAM_LR:.2f} α."
)
print(f"• This run: {minutes:.1f} min ({mode}).")

# %% [markdown]
# - **The source's §4.1 formula is not a training rule.** $\theta_0 + \alpha(x - \theta_0)$ with
#   $x$ the loss pulls the parameters towards the *value* of the loss: on a least-squares problem
#   it settles where $L(\theta) = \theta$, far from the minimum, depends on the loss's units, and
#   can diverge. The correct update, derived from a first-order Taylor expansion, is
#   $\theta \leftarrow \theta - \alpha \nabla_\theta L(\theta)$.
# - **Softmax + cross-entropy has the gradient $p - y$** with respect to the logits (divided by
#   $N$ for a batch mean); backpropagation applies the chain rule layer by layer. Written by hand
#   in NumPy, both match `torch.autograd` to float64 rounding and finite differences to far below
#   $10^{-6}$; finite differences need float64.
# - **The learning rate** must stay below $2/\lambda_{\max}$ (the steepest curvature); the
#   flattest direction then decides the speed. Momentum and Adam speed up narrow, curved valleys;
#   each optimiser needs its own learning rate.
# - **`loss.backward()` + `optimizer.step()` are this chapter's mathematics**: a hand-written
#   logistic-regression head on frozen MiniLM features matches `torch.optim.SGD` weight for
#   weight.
# - **The article's training code fails in measurable ways**: a loss computed as the log of a
#   probability overflows to infinity in float32 (compute it from the logits); a summed loss makes
#   every step $N$ times longer, so the learning rate depends on the batch size (on the logistic
#   head the weights balloon; on a squared error it diverges: use the mean); one update per epoch
#   makes 10 epochs 10 updates (enough for this convex head at equal compute, not for a network:
#   use mini-batches); an Adam created at every step degenerates to sign-gradient steps of fixed
#   size (create it once). The article's own §4.5 writes the correct update rule.
#
# ## 小结
#
# - **原文 §4.1 的公式并不是训练规则。** 当 $x$ 是损失值时，$\theta_0 + \alpha(x - \theta_0)$
#   会把参数拉向损失的*数值*：在最小二乘问题上，它停在 $L(\theta) = \theta$ 的位置，远离最小值，
#   结果随损失的量纲而变，甚至会发散。由一阶泰勒展开推导出的正确更新是
#   $\theta \leftarrow \theta - \alpha \nabla_\theta L(\theta)$（梯度下降）。
# - **softmax + 交叉熵对 logits 的梯度是 $p - y$**（批量取平均时再除以 $N$）；反向传播就是逐层应用链式法则。
#   用 NumPy 手写的梯度与 `torch.autograd` 的结果在 float64 舍入误差范围内一致，与有限差分的相对误差远小于
#   $10^{-6}$；有限差分检验必须使用 float64。
# - **学习率**必须小于 $2/\lambda_{\max}$（最陡方向的曲率）；最平缓的方向决定收敛速度。动量法和 Adam
#   能加快在狭长、弯曲山谷中的收敛；每种优化器都需要单独调学习率。
# - **`loss.backward()` 与 `optimizer.step()` 就是本章的数学**：在冻结的 MiniLM 特征上手写梯度下降训练的
#   逻辑回归分类头，与 `torch.optim.SGD` 的结果逐个权重一致。
# - **原文的训练代码有可测量的错误**：用概率取对数计算损失，在 float32 下会溢出为无穷大（应从 logits 计算）；
#   对批次求和的损失使每一步长 $N$ 倍，学习率因此依赖于批量大小（逻辑回归头的权重急剧膨胀，平方误差则直接发散；
#   应取平均）；每个 epoch 只更新一次，10 个 epoch 只有 10 次更新（在同等计算量下对这个凸的分类头已经够用，对整个网络则不够；应使用小批量）；
#   每一步重新创建 Adam 会退化为固定步长的符号梯度下降（优化器只应创建一次）。原文自己的 §4.5 写出了正确的更新公式。
#
# **Next:** chapter 5 fine-tunes the whole classifier end to end — with these same updates, done by
# `torch.optim.AdamW` — and evaluates it properly.
