"""The traffic system's three forecasters, in two menus.

``harmone`` is HarmonE's exact configuration, served as HarmonE serves it (a scikit-learn
``predict`` or a PyTorch forward per request): Ridge(α=256), SVR(linear, C=0.05, tol=0.16),
LSTM(1 layer, 50 hidden; Adam 1e-3, batch 16, 50 epochs), on min-max scaled flow.

``harmonia`` is what a careful engineer would ship: hyperparameters chosen on a validation
split of the training data (the last 20 %, in time order), and a lean inference path. For
models this small the per-call overhead of a framework, not the arithmetic, dominates:
a linear model is a dot product of five numbers, so it is served as one; the LSTM is served
by a NumPy forward pass over the trained weights instead of a PyTorch call.

Every model carries its own scaler, fitted on the data that model was trained on and on
nothing else, so a version is self-contained and the scaler never sees data from the future.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from sklearn.linear_model import Ridge
from sklearn.svm import SVR
from torch import nn

from harmonia.systems._training import one_thread
from harmonia.systems.traffic import SYSTEM
from harmonia.systems.traffic.data import LOOKBACK, lag_windows

Menu = Literal["harmone", "harmonia"]
MENUS: tuple[Menu, ...] = ("harmonia", "harmone")
#: models from the cheapest to the most expensive
MODEL_KINDS = SYSTEM.models  # as registered
VALIDATION_SHARE = 0.2


@dataclass(frozen=True)
class Scaler:
    """Min-max scaling to [0, 1], fitted on one model's training series only."""

    low: float
    high: float

    @classmethod
    def fit(cls, series: np.ndarray) -> Scaler:
        low, high = float(np.min(series)), float(np.max(series))
        return cls(low, high if high > low else low + 1.0)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.low) / (self.high - self.low)

    def inverse(self, value: float) -> float:
        return value * (self.high - self.low) + self.low


class Core(Protocol):
    """A trained estimator on scaled data: one prediction per call, and how to save it."""

    def predict_scaled(self, window: Sequence[float]) -> float: ...

    def save(self, directory: Path) -> None: ...


# -- linear models (Ridge, linear-kernel SVR) ------------------------------------------------
class LinearCore:
    """A linear model. ``lean`` serves it as a dot product; otherwise through scikit-learn."""

    def __init__(self, estimator: Any, lean: bool) -> None:
        self.estimator = estimator
        self.lean = lean
        self._weights = [float(w) for w in np.ravel(estimator.coef_)]
        self._bias = float(np.ravel(estimator.intercept_)[0])

    def predict_scaled(self, window: Sequence[float]) -> float:
        if self.lean:
            total = self._bias
            for weight, value in zip(self._weights, window, strict=True):
                total += weight * value
            return total
        return float(self.estimator.predict(np.asarray([window], dtype=float))[0])

    def save(self, directory: Path) -> None:
        # Artifacts are written and read by Harmonia itself, never uploaded: pickle is safe
        # here; the server's upload path will take weights in a data-only format instead.
        (directory / "estimator.pkl").write_bytes(pickle.dumps(self.estimator))

    @classmethod
    def load(cls, directory: Path, lean: bool) -> LinearCore:
        return cls(pickle.loads((directory / "estimator.pkl").read_bytes()), lean)


def _validation_split(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    cut = max(1, int(len(X) * (1 - VALIDATION_SHARE)))
    return X[:cut], y[:cut], X[cut:], y[cut:]


def _mse(estimator: Any, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((estimator.predict(X) - y) ** 2))


def _select(
    candidates: list[dict[str, Any]], make: Any, X: np.ndarray, y: np.ndarray
) -> dict[str, Any]:
    """The candidate parameters with the lowest validation error (time-ordered split)."""
    X_fit, y_fit, X_val, y_val = _validation_split(X, y)
    if len(X_val) < 10:
        return candidates[0]
    errors = [_mse(make(**params).fit(X_fit, y_fit), X_val, y_val) for params in candidates]
    return candidates[int(np.argmin(errors))]


def _svr(**params: Any) -> SVR:
    return SVR(kernel="linear", **params)


RIDGE_GRID = [{"alpha": float(a)} for a in np.logspace(-3, 3, 13)]
SVR_GRID = [{"C": c, "epsilon": e} for c in (0.05, 0.5, 5.0) for e in (0.001, 0.01, 0.05)]


def fit_linear(
    kind: str, menu: Menu, X: np.ndarray, y: np.ndarray, seed: int
) -> tuple[LinearCore, dict[str, Any]]:
    """Fit Ridge (``linear``) or a linear-kernel SVR (``svm``) as the menu says."""
    if kind == "linear":
        params = {"alpha": 256.0} if menu == "harmone" else _select(RIDGE_GRID, Ridge, X, y)
        estimator: Any = Ridge(**params).fit(X, y)
    else:
        params = {"C": 0.05, "tol": 0.16} if menu == "harmone" else _select(SVR_GRID, _svr, X, y)
        estimator = _svr(**params).fit(X, y)
    return LinearCore(estimator, lean=menu == "harmonia"), params


# -- LSTM --------------------------------------------------------------------------------
class LSTMNet(nn.Module):
    """One LSTM layer over the lag window, and a linear head on its last output."""

    def __init__(self, hidden: int = 50) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, num_layers=1, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1, :]).squeeze(-1)  # type: ignore[no-any-return]


class LSTMCore:
    """The LSTM; ``lean`` runs its forward pass in NumPy on the trained weights."""

    def __init__(self, net: LSTMNet, lean: bool) -> None:
        self.net = net.eval()
        self.lean = lean
        state = {k: v.detach().numpy().astype(float) for k, v in net.state_dict().items()}
        self._w_ih = np.ascontiguousarray(state["lstm.weight_ih_l0"][:, 0])  # one input feature
        self._w_hh = state["lstm.weight_hh_l0"]  # (4h, h)
        self._b = state["lstm.bias_ih_l0"] + state["lstm.bias_hh_l0"]
        self._w_out = state["head.weight"][0]
        self._b_out = float(state["head.bias"][0])
        self._hidden = self._w_hh.shape[1]

    def predict_scaled(self, window: Sequence[float]) -> float:
        if not self.lean:
            with torch.inference_mode():
                x = torch.tensor(window, dtype=torch.float32).view(1, -1, 1)
                return float(self.net(x)[0])
        n = self._hidden
        h = np.zeros(n)
        c = np.zeros(n)
        w_ih, w_hh, bias = self._w_ih, self._w_hh, self._b
        for value in window:
            gates = w_hh @ h
            gates += bias
            gates += w_ih * value
            # sigmoid for the input, forget and output gates; the cell input uses tanh,
            # computed as 2·sigmoid(2x) − 1 so one exp serves all four gates
            gates[2 * n : 3 * n] *= 2.0
            act = 1.0 / (1.0 + np.exp(-gates))
            c = act[n : 2 * n] * c + act[:n] * (2.0 * act[2 * n : 3 * n] - 1.0)
            h = act[3 * n :] * np.tanh(c)
        return float(self._w_out @ h + self._b_out)

    def save(self, directory: Path) -> None:
        torch.save(self.net.state_dict(), directory / "lstm.pt")

    @classmethod
    def load(cls, directory: Path, lean: bool, hidden: int) -> LSTMCore:
        net = LSTMNet(hidden)
        net.load_state_dict(torch.load(directory / "lstm.pt", weights_only=True))
        return cls(net, lean)


LSTM_PARAMS = {"hidden": 50, "epochs": 50, "batch": 16, "lr": 1e-3}


def fit_lstm(
    X: np.ndarray, y: np.ndarray, seed: int, params: dict[str, Any], start: LSTMNet | None = None
) -> LSTMNet:
    """Adam on mean squared error, mini-batches in a seeded random order, on one thread
    (`one_thread`)."""
    torch.manual_seed(seed)
    net = start if start is not None else LSTMNet(int(params["hidden"]))
    net.train()
    optimiser = torch.optim.Adam(net.parameters(), lr=float(params["lr"]))
    loss = nn.MSELoss()
    inputs = torch.tensor(X, dtype=torch.float32).unsqueeze(-1)
    targets = torch.tensor(y, dtype=torch.float32)
    order = torch.Generator().manual_seed(seed)
    batch = int(params["batch"])
    with one_thread():
        for _ in range(int(params["epochs"])):
            permutation = torch.randperm(len(inputs), generator=order)
            for start_index in range(0, len(inputs), batch):
                chosen = permutation[start_index : start_index + batch]
                optimiser.zero_grad()
                error = loss(net(inputs[chosen]), targets[chosen])
                error.backward()
                optimiser.step()
    return net.eval()


# -- the model a version holds --------------------------------------------------------------
@dataclass
class TrafficModel:
    """A trained forecaster: its kind, menu, scaler, core and the parameters it was fit with."""

    kind: str
    menu: Menu
    scaler: Scaler
    core: LinearCore | LSTMCore
    params: dict[str, Any]

    def predict(self, window: Sequence[float]) -> float:
        """Next flow from the last ``LOOKBACK`` flows, in vehicles per 5 minutes."""
        low, span = self.scaler.low, self.scaler.high - self.scaler.low
        scaled = [(value - low) / span for value in window]
        return self.core.predict_scaled(scaled) * span + low

    def predict_many(self, windows: np.ndarray) -> np.ndarray:
        """Predictions for many windows at once (the oracle and the tests; never served)."""
        scaled = self.scaler.transform(windows)
        if isinstance(self.core, LSTMCore):
            with torch.inference_mode():
                out = self.core.net(torch.tensor(scaled, dtype=torch.float32).unsqueeze(-1))
            values = out.numpy().astype(float)
        else:
            values = self.core.estimator.predict(scaled)
        return np.asarray(values) * (self.scaler.high - self.scaler.low) + self.scaler.low

    def save(self, directory: Path) -> None:
        meta = {"kind": self.kind, "menu": self.menu, "params": self.params}
        meta["scaler"] = {"low": self.scaler.low, "high": self.scaler.high}
        (directory / "model.json").write_text(json.dumps(meta, indent=1))
        self.core.save(directory)

    @classmethod
    def load(cls, directory: Path) -> TrafficModel:
        meta = json.loads((directory / "model.json").read_text())
        lean = meta["menu"] == "harmonia"
        core: LinearCore | LSTMCore
        if meta["kind"] == "lstm":
            core = LSTMCore.load(directory, lean, int(meta["params"]["hidden"]))
        else:
            core = LinearCore.load(directory, lean)
        return cls(meta["kind"], meta["menu"], Scaler(**meta["scaler"]), core, meta["params"])


def train(
    kind: str,
    menu: Menu,
    series: np.ndarray,
    *,
    seed: int = 0,
    warm_start: TrafficModel | None = None,
) -> TrafficModel:
    """Train a forecaster of ``kind`` on ``series`` alone (its scaler included).

    With ``warm_start`` (retraining an LSTM in the harmonia menu) the network starts from
    the given model's weights and trains for a fifth of the epochs.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model {kind!r}; known: {', '.join(MODEL_KINDS)}")
    scaler = Scaler.fit(series)
    X, y = lag_windows(scaler.transform(series))
    if kind != "lstm":
        core, params = fit_linear(kind, menu, X, y, seed)
        return TrafficModel(kind, menu, scaler, core, params)
    params = dict(LSTM_PARAMS)
    start = None
    if warm_start is not None and menu == "harmonia" and isinstance(warm_start.core, LSTMCore):
        params["epochs"] = max(1, int(params["epochs"]) // 5)
        start = LSTMNet(int(params["hidden"]))
        start.load_state_dict(warm_start.core.net.state_dict())
    net = fit_lstm(X, y, seed, params, start)
    return TrafficModel(kind, menu, scaler, LSTMCore(net, lean=menu == "harmonia"), params)


def holdout_r2(
    kind: str,
    menu: Menu,
    series: np.ndarray,
    *,
    seed: int = 0,
    warm_start: TrafficModel | None = None,
) -> float:
    """R² on the last ``VALIDATION_SHARE`` of ``series`` of a model trained on the rest (as
    `train` trains it, from ``warm_start`` where given).

    Stored with every version as its expected quality, so that a strategy can judge a model
    it has not served yet, and a retrained version by what it reads, not by what version 1
    read (the held-out part is the most recent, as it would be live).
    """
    cut = int(len(series) * (1 - VALIDATION_SHARE))
    model = train(kind, menu, series[:cut], seed=seed, warm_start=warm_start)
    inputs, targets = lag_windows(series[cut - LOOKBACK :])
    predicted = model.predict_many(inputs)
    residual = float(((targets - predicted) ** 2).sum())
    return 1.0 - residual / float(((targets - targets.mean()) ** 2).sum())
