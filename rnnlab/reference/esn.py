"""Plain NumPy float64 reference of the echo state network (leaky-integrator tanh reservoir plus a
ridge-regression readout), written equation by equation.

This is the slow, obviously-correct twin of :mod:`rnnlab.kernels.esn` and of
:class:`rnnlab.layers.esn.EchoStateNetwork`'s readout solve; it exists to check them against and
to read. Nothing here validates its inputs beyond what NumPy does.

Shapes (time-major, as everywhere in rnnlab)::

    u        (T, B, I)     inputs u_1 .. u_T
    x0       (B, N)        reservoir state before the first input (None = zeros)
    W_in     (N, I)        input weights            (``weight_ih`` in the layer's state_dict)
    W        (N, N)        recurrent weights         (``weight_hh``)
    b        (N,)          reservoir bias           (``bias``)
    W_out    (O, F)        readout weights          (``readout.weight``), F = N or N + I
    b_out    (O,)          readout bias             (``readout.bias``)

Reservoir (leak rate a in (0, 1])::

    x_t = (1 - a) x_{t-1} + a tanh(W x_{t-1} + W_in u_t + b)

Readout, on the features z_t = x_t, or z_t = [x_t; u_t] when it also sees the input::

    y_t = W_out z_t + b_out

Ridge regression of the readout on features X = [z_t] (rows) and targets Y = [y_t] (rows), with
the bias folded in as a column of ones, X~ = [1 | X], and the bias left unpenalised::

    minimise  J(W~) = ||Y - X~ W~^T||^2 + ridge ||W_out||^2,       W~ = [b_out | W_out]  (O, N+1)
    solution  W~ = Y^T X~ (X~^T X~ + ridge D)^{-1},                 D = diag(0, 1, ..., 1)

Gradient of J (zero at the solution)::

    dJ/dW~ = -2 (Y - X~ W~^T)^T X~ + 2 ridge W~ D
"""

from __future__ import annotations

import numpy as np

__all__ = ["reservoir_states", "features", "readout", "ridge_readout", "ridge_objective", "ridge_gradient", "generate"]


def reservoir_states(u, w_in, w, b, leak_rate, x0=None):
    """All reservoir states x_1 .. x_T, shape (T, B, N), float64."""
    u = np.asarray(u, np.float64)
    w_in, w, b = (np.asarray(a, np.float64) for a in (w_in, w, b))
    T, B, _ = u.shape
    N = w.shape[0]
    x = np.zeros((B, N)) if x0 is None else np.array(x0, np.float64)
    a = float(leak_rate)
    states = np.empty((T, B, N))
    for t in range(T):
        x = (1.0 - a) * x + a * np.tanh(x @ w.T + u[t] @ w_in.T + b)
        states[t] = x
    return states


def features(states, inputs=None):
    """z_t = x_t, or [x_t; u_t] when ``inputs`` is given: (T, B, N) -> (T, B, F)."""
    states = np.asarray(states, np.float64)
    return states if inputs is None else np.concatenate([states, np.asarray(inputs, np.float64)], axis=-1)


def readout(z, w_out, b_out):
    """y_t = W_out z_t + b_out for every feature row: (T, B, F) -> (T, B, O)."""
    return np.asarray(z, np.float64) @ np.asarray(w_out, np.float64).T + np.asarray(b_out, np.float64)


def _augment(z):
    """X~ = [1 | X]: the features as rows (T*B, F) with a leading column of ones."""
    X = np.asarray(z, np.float64).reshape(-1, z.shape[-1])
    return np.hstack([np.ones((X.shape[0], 1)), X])


def ridge_readout(z, targets, ridge):
    """(W_out (O, F), b_out (O,)) by the normal equations W~ = Y^T X~ (X~^T X~ + ridge D)^{-1}.

    Features ``z`` (T, B, F) and ``targets`` (T, B, O) are paired row by row (warm-up already removed).
    """
    Xa = _augment(z)
    Y = np.asarray(targets, np.float64).reshape(Xa.shape[0], -1)
    D = np.eye(Xa.shape[1])
    D[0, 0] = 0.0  # the bias is not penalised
    # W~ (X~^T X~ + ridge D) = Y^T X~; the matrix is symmetric, so solve its transpose
    w_aug = np.linalg.solve(Xa.T @ Xa + ridge * D, Xa.T @ Y).T
    return w_aug[:, 1:], w_aug[:, 0]


def ridge_objective(z, targets, w_out, b_out, ridge):
    """J = ||Y - (X W_out^T + b_out)||^2 + ridge ||W_out||^2 over the feature rows X of z."""
    residual = np.asarray(targets, np.float64) - readout(z, w_out, b_out)
    return float(np.sum(residual**2) + ridge * np.sum(np.asarray(w_out, np.float64) ** 2))


def ridge_gradient(z, targets, w_out, b_out, ridge):
    """(dJ/dW_out (O, F), dJ/db_out (O,)) of :func:`ridge_objective`."""
    X = np.asarray(z, np.float64).reshape(-1, z.shape[-1])
    residual = (np.asarray(targets, np.float64) - readout(z, w_out, b_out)).reshape(X.shape[0], -1)
    d_w = -2.0 * residual.T @ X + 2.0 * ridge * np.asarray(w_out, np.float64)
    d_b = -2.0 * residual.sum(axis=0)
    return d_w, d_b


def generate(n_steps, warmup_inputs, w_in, w, b, leak_rate, w_out, b_out, x0=None):
    """Free-running forecast, (n_steps, B, O): teacher-forced over ``warmup_inputs`` (T0, B, I), then
    each output is fed back as the next input (needs O = I). The readout sees z = x, or [x; u] when
    W_out has N + I columns::

        x_0, u_0 = the state after the last warm-up input, and that input
        y_k      = W_out z_{k-1} + b_out,  u_k = y_k                      k = 1 .. n_steps
        x_k      = (1 - a) x_{k-1} + a tanh(W x_{k-1} + W_in u_k + b)
    """
    warmup_inputs = np.asarray(warmup_inputs, np.float64)
    x = reservoir_states(warmup_inputs, w_in, w, b, leak_rate, x0)[-1]
    u = warmup_inputs[-1]
    w_in, w, b = (np.asarray(v, np.float64) for v in (w_in, w, b))
    w_out, b_out = np.asarray(w_out, np.float64), np.asarray(b_out, np.float64)
    with_input = w_out.shape[1] > w.shape[0]
    a = float(leak_rate)
    ys = np.empty((n_steps, x.shape[0], w_out.shape[0]))
    for k in range(n_steps):
        z = np.concatenate([x, u], axis=-1) if with_input else x
        ys[k] = z @ w_out.T + b_out
        u = ys[k]
        x = (1.0 - a) * x + a * np.tanh(x @ w.T + u @ w_in.T + b)
    return ys
