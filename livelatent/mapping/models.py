"""The regressions a mapping learns: inputs (a few numbers) to a latent point (mean | log-variance).

Every kind has the same shape, so the voice bank plays any of them the same way: a point is a
weighted sum of *rows* (latent vectors, ``2 * latent`` wide), with weights worked out from the
inputs, window by window::

    point(x) = sum over terms t of  weight_t(x) * rows[t]

- ``linear``: the weights are the inputs, their pairwise products (when there are at most
  :data:`PAIRWISE_UP_TO` inputs: a bilinear surface, which passes through the four corners of a
  square and is straight along each input) and 1; the rows a ridge regression's coefficients.
- ``knn``: the weights are inverse-distance weights of the ``k`` nearest examples (the rows are
  the examples' targets): an example's own input gives its own target.
- ``mlp``: a small network (a tanh layer, then a softmax) gives the weights of the examples'
  distinct targets (the rows): a point is always a blend of the places it was taught, never a
  wild extrapolation, and between two neighbouring examples it moves from one target to the
  other. Trained full-batch with Adam from a seeded start, stopped when the loss no longer
  improves; deterministic with its seed on one machine (a replay uses the journaled weights).

Inputs are standardised by the examples' mean and spread first. Plain numpy: playing a mapping
never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError, check_seed, is_whole

__all__ = ["Model", "fit", "check_k", "older_k_and_seed", "KINDS", "PAIRWISE_UP_TO", "MAX_EXAMPLES",
           "MAX_INPUT", "check_inputs"]

KINDS = ("mlp", "knn", "linear")
PAIRWISE_UP_TO = 6
HIDDEN = 16
DECAY = 1e-3             # weight decay of the mlp: smooth between the examples
MAX_EXAMPLES = 63        # a mapping keeps at most this many; a knn mixes at most all of them
_RIDGE = 1e-6
_FAR = 1e8               # standardised inputs this far out: distances measured relative to them
MAX_INPUT = 1e30         # examples' inputs up to this size (a model keeps its mean and spread in float32)
_HUGE = 1e150            # standardised inputs beyond this are taken as this (their products overflow)


def older_k_and_seed(k, seed) -> tuple[int, int]:
    """What livelatent before these checks made of any ``k`` and ``seed``: k beyond the
    examples meant all of them, and a negative seed never trained an mlp. A set it saved, or a
    replay of its journal's code, plays what it played with these."""
    return min(max(1, int(k)), MAX_EXAMPLES), max(0, int(seed))


def check_k(k, where: str = "mapping") -> int:
    """``k`` (how many nearest examples a knn mapping mixes) as an int from 1 to
    :data:`MAX_EXAMPLES`."""
    if not is_whole(k) or not 1 <= k <= MAX_EXAMPLES:
        raise ParameterError(f"{where}(k={k!r}): a whole number from 1 to {MAX_EXAMPLES} (how many of the "
                             f"nearest examples a knn mapping mixes)")
    return int(k)


@dataclass(frozen=True, eq=False)
class Model:
    """A fitted mapping: ``kind``, its arrays (see :meth:`arrays`), ``rows`` (terms, out)."""

    kind: str
    mean: np.ndarray          # (inputs,) the examples' mean input
    scale: np.ndarray         # (inputs,) and spread
    rows: np.ndarray          # (terms, out) float32: what the weights mix
    hidden: np.ndarray | None = None     # mlp: (inputs + 1, hidden) first layer (bias last)
    output: np.ndarray | None = None     # mlp: (hidden + 1, terms) the softmax's layer
    examples: np.ndarray | None = None   # knn: (examples, inputs) standardised inputs
    k: int = 0

    @property
    def inputs(self) -> int:
        return int(self.mean.shape[0])

    @property
    def terms(self) -> int:
        return int(self.rows.shape[0])

    def weights(self, x: np.ndarray) -> np.ndarray:
        """``(n, terms)`` weights of the inputs ``x`` ``(n, inputs)``."""
        with np.errstate(over="ignore", invalid="ignore"):   # an input beyond 1e300 is far out,
            z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale      # not an error
        if self.kind != "knn":        # (knn has its own way with far inputs): beyond 1e150
            z = np.clip(z, -_HUGE, _HUGE)      # spreads the products overflowed (to NaN); a point
                                               # that far is held at the latent edge either way
        if self.kind == "linear":
            return _linear_features(z)
        if self.kind == "mlp":
            return _softmax(_hidden(z, self.hidden) @ self.output)
        return _knn_weights(z, self.examples, self.k)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.weights(np.atleast_2d(x)) @ self.rows.astype(np.float64)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that make it (for a set); :meth:`from_arrays` rebuilds it."""
        found = {"mean": self.mean, "scale": self.scale, "rows": self.rows}
        if self.hidden is not None:
            found["hidden"], found["output"] = self.hidden, self.output
        if self.examples is not None:
            found["examples"] = self.examples
        return found

    def check(self, inputs: int, width: int | None = None) -> "Model":
        """This model, if its arrays fit a mapping of ``inputs`` inputs to latent points
        ``width`` wide (None: any) and hold only numbers; a ValueError saying what is wrong
        otherwise (a set edited by hand, damaged, or of another model)."""
        def need(ok, what):
            if not ok:
                raise ValueError(f"its {self.kind} model's {what}")
        need(self.kind in KINDS, f"kind is not one of {', '.join(KINDS)}")
        need(self.mean.shape == (inputs,) and self.scale.shape == (inputs,),
             f"mean and spread must have {inputs} values (one per input)")
        need(self.rows.ndim == 2 and self.rows.shape[0] >= 1
             and (width is None or self.rows.shape[1] == width),
             f"rows must be (terms, {width or 'width'}): latent points of this model")
        terms = self.terms
        if self.kind == "linear":
            pairs = inputs * (inputs - 1) // 2 if inputs <= PAIRWISE_UP_TO else 0
            need(terms == inputs + pairs + 1, f"rows must be {inputs + pairs + 1} for {inputs} inputs")
        elif self.kind == "mlp":
            hidden, output = self.hidden, self.output
            need(hidden is not None and output is not None and hidden.ndim == 2 and output.ndim == 2
                 and hidden.shape[0] == inputs + 1 and output.shape == (hidden.shape[1] + 1, terms),
                 f"layers must be ({inputs + 1}, hidden) and (hidden + 1, {terms})")
        else:
            need(self.examples is not None and self.examples.shape == (terms, inputs),
                 f"examples must be ({terms}, {inputs}): one per row")
        arrays = self.arrays().values()
        need(all(np.isfinite(a).all() for a in arrays) and (self.scale > 0).all(),
             "arrays must hold finite numbers (and spreads above 0)")
        return self

    @classmethod
    def from_arrays(cls, kind: str, arrays: dict, k: int = 0) -> "Model":
        return cls(kind, np.asarray(arrays["mean"], np.float64), np.asarray(arrays["scale"], np.float64),
                   np.asarray(arrays["rows"], np.float32),
                   None if "hidden" not in arrays else np.asarray(arrays["hidden"], np.float64),
                   None if "output" not in arrays else np.asarray(arrays["output"], np.float64),
                   None if "examples" not in arrays else np.asarray(arrays["examples"], np.float64), int(k))


def check_inputs(x, where: str) -> np.ndarray:
    """Examples' inputs ``x`` as float64, if within :data:`MAX_INPUT` (a ParameterError naming
    ``where`` otherwise: a model keeps their mean and spread in float32)."""
    x = np.asarray(x, dtype=np.float64)
    if not np.abs(x).max() <= MAX_INPUT:          # (NaN fails too)
        raise ParameterError(f"{where}: examples' inputs reach {np.abs(x).max():g}; a mapping learns "
                             f"from inputs within +-{MAX_INPUT:g} (scale them down)")
    return x


def fit(kind: str, x: np.ndarray, y: np.ndarray, *, seed: int = 0, k: int = 4,
        each: bool = True) -> Model:
    """Fit ``kind`` to examples ``x`` ``(n, inputs)`` -> ``y`` ``(n, out)``. Inputs are scaled
    by their spread, ``each`` by its own (faders), or all by one (features of drawings, whose
    weak components are noise that a scale of their own would make loud)."""
    if kind not in KINDS:
        raise ParameterError(f"kind={kind!r}: one of {', '.join(KINDS)}")
    k, seed = check_k(k, "fit"), check_seed(seed, high=None)
    x, y = check_inputs(x, "fit"), np.asarray(y, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0) if each else np.full(x.shape[1], np.sqrt((x.var(axis=0)).sum()))
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = (x - mean) / scale
    if kind == "knn":
        model = Model("knn", mean, scale, y, examples=z, k=min(k, len(z)))
    elif kind == "linear":
        model = Model("linear", mean, scale, _ridge(_linear_features(z), y))
    else:
        hidden, output, rows = _fit_mlp(z, y, seed)
        model = Model("mlp", mean, scale, rows, hidden=hidden, output=output)
    # float32, as a set stores them: what plays live is what a replay rebuilds, bit for bit
    return Model.from_arrays(kind, {name: a.astype(np.float32) for name, a in model.arrays().items()},
                             model.k)


def _linear_features(z: np.ndarray) -> np.ndarray:
    n, d = z.shape
    parts = [z]
    if d <= PAIRWISE_UP_TO:
        parts += [(z[:, i] * z[:, j])[:, None] for i in range(d) for j in range(i + 1, d)]
    parts.append(np.ones((n, 1)))
    return np.concatenate(parts, axis=1)


def _ridge(features: np.ndarray, y: np.ndarray) -> np.ndarray:
    gram = features.T @ features
    return np.linalg.solve(gram + _RIDGE * np.eye(gram.shape[0]), features.T @ y)


def _hidden(z: np.ndarray, first: np.ndarray) -> np.ndarray:
    h = np.tanh(z @ first[:-1] + first[-1])
    return np.concatenate([h, np.ones((z.shape[0], 1))], axis=1)


def _knn_weights(z: np.ndarray, examples: np.ndarray, k: int) -> np.ndarray:
    """Inverse-distance weights of the ``k`` nearest examples (an exact match: that example).

    Inputs far out (a fader sending 1e200) would overflow when squared, and the examples'
    differences would vanish beside them, so every distance would tie: there the differences
    are divided by the row's largest before squaring, and the nearest are ranked by
    ``|e|^2 - 2 z.e`` (the squared distance less ``|z|^2``, which loses nothing to rounding).
    The weights then stay finite and always fall on the nearest examples."""
    k = max(1, min(int(k), examples.shape[0]))      # a model from a set of any age
    z = np.clip(z, -1e300, 1e300)         # an infinity (1e308 / a small spread) is only far
    diff = z[:, None, :] - examples[None, :, :]                                  # (n, examples, in)
    reach = np.abs(diff).max(axis=(1, 2))
    far = reach > _FAR
    scale = np.where(far, reach, 1.0)[:, None]
    distance = np.sqrt(((diff / scale[:, :, None]) ** 2).sum(axis=2))            # in units of scale
    rank = np.where(far[:, None], ((examples ** 2).sum(axis=1)[None, :] / scale
                                   - 2.0 * (z / scale) @ examples.T), distance)
    if k < examples.shape[0]:
        cut = np.partition(rank, k - 1, axis=1)[:, k - 1:k]
        distance = np.where(rank <= cut, distance, np.inf)
    exact = (distance < 1e-9) & ~far[:, None]
    weights = np.where(exact, 1.0, 1.0 / np.maximum(distance, 1e-9) ** 2)
    weights = np.where(exact.any(axis=1, keepdims=True), exact.astype(np.float64), weights)
    weights = np.where(np.isinf(distance), 0.0, weights)
    return weights / weights.sum(axis=1, keepdims=True)


def _fit_mlp(z: np.ndarray, y: np.ndarray, seed: int, *, steps: int = 3000, rate: float = 0.03,
             patience: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A tanh layer, then a softmax over the examples' distinct targets: trained full-batch with
    Adam on the cross-entropy of each example's own target (plus a little weight decay), kept
    at its best and stopped when that no longer improves by 0.1% for ``patience`` steps.
    Returns (hidden layer, output layer, targets)."""
    rng = np.random.default_rng(seed)
    n, d = z.shape
    rows, labels = np.unique(y, axis=0, return_inverse=True)
    labels = labels.ravel()
    classes = rows.shape[0]
    onehot = np.eye(classes)[labels]
    params = [rng.normal(0, 1 / np.sqrt(d), (d, HIDDEN)), np.zeros(HIDDEN),
              rng.normal(0, 1 / np.sqrt(HIDDEN), (HIDDEN, classes)), np.zeros(classes)]
    moments = [np.zeros_like(p) for p in params]
    squares = [np.zeros_like(p) for p in params]
    best, best_loss, since = [p.copy() for p in params], np.inf, 0
    for step in range(1, steps + 1):
        w1, b1, w2, b2 = params
        h = np.tanh(z @ w1 + b1)
        p = _softmax(h @ w2 + b2)
        loss = float(-np.log(np.maximum((p * onehot).sum(axis=1), 1e-12)).mean())
        if loss < best_loss * 0.999:
            best, best_loss, since = [q.copy() for q in params], loss, 0
        elif (since := since + 1) > patience or loss < 1e-3:
            break
        g_out = (p - onehot) / n
        g_h = (g_out @ w2.T) * (1 - h ** 2)
        grads = [z.T @ g_h + DECAY * w1, g_h.sum(axis=0), h.T @ g_out + DECAY * w2, g_out.sum(axis=0)]
        for i, g in enumerate(grads):
            moments[i] = 0.9 * moments[i] + 0.1 * g
            squares[i] = 0.999 * squares[i] + 0.001 * g * g
            params[i] -= rate * (moments[i] / (1 - 0.9 ** step)) / (
                np.sqrt(squares[i] / (1 - 0.999 ** step)) + 1e-8)
    w1, b1, w2, b2 = best
    return np.vstack([w1, b1[None, :]]), np.vstack([w2, b2[None, :]]), rows


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
