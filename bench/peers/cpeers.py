"""Peers written in C, compiled when first used: the hand-written loop
(``native.c``, ``-O3 -march=native``) and FANN (``fann_driver.c`` against
Debian's libfann-dev).  Called through ctypes, which releases the GIL."""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import ClassVar

import numpy as np

from . import ACTIVATIONS, LOSSES, Peer, Unavailable

HERE = Path(__file__).resolve().parent
BUILD = HERE.parent / "build"  # bench/build/: ignored by git

NATIVE_FLAGS = ["-O3", "-march=native", "-fopenmp-simd"]
FANN_FLAGS = ["-O3"]  # the driver's loop is trivial; FANN itself is Debian's build


def compile_shared(source, flags, libs=(), tag=""):
    """Compile ``source`` into a shared library in bench/build/ (once per
    source text and flags) and return its path; ``Unavailable`` if it fails."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise Unavailable("no C compiler (gcc) on PATH")
    command = [compiler, "-shared", "-fPIC", *flags]
    key = hashlib.sha256((source.read_text() + " ".join(command + list(libs))).encode()).hexdigest()[:12]
    target = BUILD / f"{source.stem}{tag}-{key}.so"
    if not target.exists():
        BUILD.mkdir(exist_ok=True)
        partial = target.with_suffix(".tmp.so")
        result = subprocess.run(
            [*command, str(source), "-o", str(partial), *libs], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise Unavailable(f"{' '.join(command)} {source.name} failed: {result.stderr.strip()[:300]}")
        partial.replace(target)  # atomic: two processes may build at once
    return target


def _ptr(array, ctype):
    return array.ctypes.data_as(ctypes.POINTER(ctype))


_REAL = {np.dtype(np.float64): ctypes.c_double, np.dtype(np.float32): ctypes.c_float}
_SUFFIX = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}


class _CTrainer:
    """Keeps the data, the initial flat params and the layer widths in the
    arrays the C functions read."""

    def __init__(self, task, X, Y):
        self.task = task
        self.real = _REAL[task.dtype]
        self.X = np.ascontiguousarray(X, dtype=task.dtype)
        self.Y = np.ascontiguousarray(Y, dtype=task.dtype)
        self.sizes = np.array(task.layer_sizes, dtype=np.int64)
        self.initial = task.flat_params()
        self.L = len(self.sizes) - 1


# ---------------------------------------------------------------------------
# The hand-written C loop
# ---------------------------------------------------------------------------


class _NativeTrainer(_CTrainer):
    def __init__(self, task, X, Y, lib):
        super().__init__(task, X, Y)
        self.lib = lib
        self.params = self.initial.copy()

    def reset(self):
        np.copyto(self.params, self.initial)

    def train(self, rows, epochs):
        costs = np.empty(epochs)
        common = (
            ctypes.c_int(self.L),
            _ptr(self.sizes, ctypes.c_long),
            _ptr(self.params, self.real),
            _ptr(self.X, self.real),
            _ptr(self.Y, self.real),
            ctypes.c_long(rows),
            ctypes.c_long(epochs),
        )
        if not self.task.sigmoid_squared_error:  # issue 10's models: the *_model loops
            model = (ctypes.c_int * (self.L + 1))(
                *[ACTIVATIONS.index(a) for a in self.task.activations], LOSSES.index(self.task.loss)
            )
            if self.task.batch_size == 1:
                status = self.lib.train_online_model(
                    *common, ctypes.c_double(self.task.lr), _ptr(costs, ctypes.c_double), model
                )
            else:
                status = self.lib.train_minibatch_model(
                    *common,
                    ctypes.c_long(self.task.batch_size),
                    ctypes.c_double(self.task.lr),
                    _ptr(costs, ctypes.c_double),
                    model,
                )
        elif self.task.batch_size == 1:
            status = self.lib.train_online(
                *common, ctypes.c_double(self.task.lr), _ptr(costs, ctypes.c_double)
            )
        else:
            status = self.lib.train_minibatch(
                *common,
                ctypes.c_long(self.task.batch_size),
                ctypes.c_double(self.task.lr),
                _ptr(costs, ctypes.c_double),
            )
        if status != 0:
            raise RuntimeError(f"native.c training failed with status {status}")
        return costs


class Native(Peer):
    name = "C"
    about = "hand-written C loops (bench/peers/native.c), gcc " + " ".join(NATIVE_FLAGS) + ", single thread"
    _libs: ClassVar[dict] = {}

    def library(self, dtype):
        dtype = np.dtype(dtype)
        if dtype not in self._libs:
            real, exp, tanh = ("double", "exp", "tanh") if dtype == np.float64 else ("float", "expf", "tanhf")
            flags = [*NATIVE_FLAGS, f"-DREAL={real}", f"-DEXP={exp}", f"-DTANH={tanh}"]
            path = compile_shared(HERE / "native.c", flags, ["-lm"], tag="_" + _SUFFIX[dtype])
            lib = ctypes.CDLL(str(path))
            lib.train_online.restype = ctypes.c_int
            lib.train_minibatch.restype = ctypes.c_int
            lib.train_online_model.restype = ctypes.c_int
            lib.train_minibatch_model.restype = ctypes.c_int
            self._libs[dtype] = lib
        return self._libs[dtype]

    def check(self, task):
        super().check(task)
        self.library(task.dtype)

    def trainer(self, task, X, Y):
        return _NativeTrainer(task, X, Y, self.library(task.dtype))


# ---------------------------------------------------------------------------
# FANN
# ---------------------------------------------------------------------------

FANN_LIBS = {
    np.dtype(np.float64): ("FANN_F64", "doublefann"),
    np.dtype(np.float32): ("FANN_F32", "floatfann"),
}


# fastbp's activations as FANN's (enum fann_activationfunc_enum in fann_data.h) and steepness:
# FANN_SIGMOID = 1 / (1 + exp(-2 s x)), FANN_SIGMOID_SYMMETRIC = tanh(s x), FANN_LINEAR = s x.
FANN_LINEAR, FANN_SIGMOID, FANN_SIGMOID_SYMMETRIC = 0, 3, 5
FANN_ACTIVATIONS = {
    "sigmoid": (FANN_SIGMOID, 0.5),
    "tanh": (FANN_SIGMOID_SYMMETRIC, 1.0),
    "identity": (FANN_LINEAR, 1.0),
}


def fann_model(task):
    """(functions, steepnesses, learning rate) that make FANN train ``task``'s
    model, or ``Unavailable``.  A symmetric output activation makes FANN halve
    the output error (fann_update_MSE), hence twice the learning rate."""
    if task.loss != "squared_error":
        raise Unavailable(f"n/a: FANN 2.2 has no {task.loss.replace('_', '-')} loss")
    missing = sorted(set(task.activations) - set(FANN_ACTIVATIONS))
    if missing:
        raise Unavailable(f"n/a: FANN 2.2 has no {', '.join(missing)}")
    functions, steepness = zip(*(FANN_ACTIVATIONS[a] for a in task.activations))
    return functions, steepness, task.lr * (2 if functions[-1] == FANN_SIGMOID_SYMMETRIC else 1)


# FANN 2.2's RPROP parameters (fann_create_standard's defaults): increase 1.2, decrease 0.5,
# delta_min 0, delta_max 50, delta_zero 0.1, all stored as floats.
FANN_RPROP_DEFAULTS = {
    "increase": 1.2,
    "decrease": 0.5,
    "delta_min": 0.0,
    "delta_max": 50.0,
    "delta_zero": 0.1,
}
# FANN floors the previous step at this before every update (fann_update_weights_irpropm) and
# clips every weight to +-1500 after it.
FANN_RPROP_STEP_FLOOR, FANN_WEIGHT_CLIP = 0.0001, 1500.0


def _f32(x):
    return float(np.float32(x))


def torch_rprop_like_fann(defaults=FANN_RPROP_DEFAULTS):
    """(lr, hyper) of torch.optim.Rprop (and fastbp.RPROP) whose first two
    updates are FANN's with these parameters: FANN's first step is
    delta_zero * increase (the previous slope is 0 and 0 counts as the same
    sign), torch's the lr unchanged; the factors and the largest step as the
    floats FANN keeps.  From the third epoch on the rules differ (see
    fann_irpropm_costs)."""
    increase, decrease = _f32(defaults["increase"]), _f32(defaults["decrease"])
    lr = _f32(defaults["delta_zero"]) * increase  # exact in double: two floats' product
    return lr, {"etas": (decrease, increase), "step_sizes": (1e-6, _f32(defaults["delta_max"]))}


def fann_rprop_parameters(task):
    """FANN's RPROP parameters for ``task``: FANN's defaults, except that
    delta_zero is chosen so that FANN's first step (delta_zero * increase) is
    the task's lr, and the factors and the largest step are the task's."""
    eta_minus, eta_plus = task.hyper("etas")
    return dict(
        FANN_RPROP_DEFAULTS,
        increase=eta_plus,
        decrease=eta_minus,
        delta_max=task.hyper("step_sizes")[1],
        delta_zero=task.lr / eta_plus,
    )


def fann_irpropm_costs(task, X, Y, epochs, parameters=None):
    """The per-epoch mean J of FANN 2.2's RPROP (FANN_TRAIN_RPROP: iRPROP-,
    fann_update_weights_irpropm) on ``task``'s network (sigmoid, squared error,
    FANN_ERRORFUNC_LINEAR), emulated in float64 NumPy, to check what the FANN
    peer computes.  FANN's rule differs from torch.optim.Rprop's (fastbp's) in:

    * the step of a weight grows when the product of the slope and the previous
      slope is >= 0, not only > 0: on the first epoch (previous slope 0) and on
      the epoch after a sign change (its slope was set to 0), where torch keeps
      the step;
    * on a sign change FANN sets the slope to 0 and then, since 0 is not < 0,
      ADDS the (decreased) step to the weight (``if (slope < 0) w -= step;
      else w += step``), where torch leaves the weight;
    * a zero slope adds the step too (torch: sign(0) = 0, no move);
    * the previous step is floored at 0.0001 before each update (delta_min
      0 by default); the steps start at delta_zero = 0.1 (torch: at lr);
    * every weight is clipped to [-1500, 1500]; the parameters are floats;
    * the slopes are FANN's gradient: the sigmoid's derivative with its output
      clipped to [0.01, 0.99] (so it differs from the exact gradient where a
      neuron saturates), summed over the rows (not averaged: the sign is the
      same), with the opposite sign (FANN's slope is -dJ/dw).

    There is no weight decay in FANN 2.2's iRPROP- (the -0.0001 decay is
    quickprop's, ``quickprop_decay``).
    """
    p = dict(parameters or fann_rprop_parameters(task))
    inc, dec, dmin, dmax = (_f32(p[k]) for k in ("increase", "decrease", "delta_min", "delta_max"))
    W = [np.array(w, dtype=np.float64) for w in task.weights]
    b = [np.array(v, dtype=np.float64) for v in task.biases]
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    steps = [
        (np.full(w.shape, _f32(p["delta_zero"])), np.full(v.shape, _f32(p["delta_zero"])))
        for w, v in zip(W, b)
    ]
    prev = [(np.zeros(w.shape), np.zeros(v.shape)) for w, v in zip(W, b)]
    lo, hi = _f32(0.01), _f32(0.99)

    def derived(a):  # FANN_SIGMOID at steepness 0.5: 2 * 0.5 * v * (1 - v), v clipped
        v = np.clip(a, lo, hi)
        return v * (1.0 - v)

    costs = []
    for _ in range(epochs):
        A = [X]
        for w, v in zip(W, b):
            s = np.clip(
                0.5 * (A[-1] @ w.T + v), -300.0, 300.0
            )  # fann_run: sum * steepness, clamped to 150/steepness
            A.append(1.0 / (1.0 + np.exp(-2.0 * s)))
        diff = Y - A[-1]
        costs.append(0.5 * float(np.sum(diff * diff)) / len(X))
        error = diff * derived(A[-1])  # FANN_ERRORFUNC_LINEAR
        slopes = [None] * len(W)
        for l in range(len(W) - 1, -1, -1):
            slopes[l] = (error.T @ A[l], error.sum(axis=0))
            if l:
                error = (error @ W[l]) * derived(A[l])
        for l in range(len(W)):
            for i, param in enumerate((W, b)):
                slope, step, old = slopes[l][i], steps[l][i], prev[l][i]
                step0 = np.maximum(step, FANN_RPROP_STEP_FLOOR)
                same = old * slope >= 0
                nxt = np.where(same, np.minimum(step0 * inc, dmax), np.maximum(step0 * dec, dmin))
                slope = np.where(same, slope, 0.0)
                param[l] = np.clip(
                    np.where(slope < 0, param[l] - nxt, param[l] + nxt), -FANN_WEIGHT_CLIP, FANN_WEIGHT_CLIP
                )
                steps[l][i][...] = nxt
                prev[l][i][...] = slope
    return np.array(costs)


class _FannTrainer(_CTrainer):
    def __init__(self, task, X, Y, lib):
        super().__init__(task, X, Y)
        self.lib = lib
        self.handle = lib.peer_create(
            ctypes.c_int(self.L),
            _ptr(self.sizes, ctypes.c_long),
            _ptr(self.initial, self.real),
            ctypes.c_double(task.lr),
        )
        if not self.handle:
            raise RuntimeError("fann_create_standard_array failed")
        self.data = {}  # rows -> FANN's fann_train_data (RPROP)
        if task.rule == "sgd":
            lib.peer_set_optimizer(
                ctypes.c_void_p(self.handle),
                0,
                ctypes.c_double(task.hyper("momentum")),
                *(ctypes.c_double(0),) * 5,
            )
        elif task.rule == "rprop":
            p = fann_rprop_parameters(task)
            lib.peer_set_optimizer(
                ctypes.c_void_p(self.handle),
                1,
                ctypes.c_double(0),
                *(
                    ctypes.c_double(p[k])
                    for k in ("increase", "decrease", "delta_min", "delta_max", "delta_zero")
                ),
            )
        if not task.sigmoid_squared_error:  # the note's model: peer_create's settings, as before issue 10
            functions, steepness, lr = fann_model(task)
            status = lib.peer_set_model(
                ctypes.c_void_p(self.handle),
                ctypes.c_int(self.L),
                (ctypes.c_int * self.L)(*functions),
                (ctypes.c_double * self.L)(*steepness),
                ctypes.c_double(lr),
            )
            if status != 0:
                raise RuntimeError("FANN's layer count does not match the layer sizes")
        self.fann_mse = None
        self.reset()

    def reset(self):
        status = self.lib.peer_set_params(
            ctypes.c_void_p(self.handle),
            ctypes.c_int(self.L),
            _ptr(self.sizes, ctypes.c_long),
            _ptr(self.initial, self.real),
        )
        if status != 0:
            raise RuntimeError("FANN's connection count does not match the layer sizes")
        self.lib.peer_reset_state(ctypes.c_void_p(self.handle))  # momentum's deltas, RPROP's steps and slopes

    def train_data(self, rows):
        """FANN's copy of the first ``rows`` rows (made once, untimed: plan_epochs asks for it first)."""
        if rows not in self.data:
            n_in, n_out = self.X.shape[1], self.Y.shape[1]
            self.data[rows] = self.lib.peer_data(
                _ptr(self.X, self.real),
                _ptr(self.Y, self.real),
                ctypes.c_long(rows),
                ctypes.c_long(n_in),
                ctypes.c_long(n_out),
            )
            if not self.data[rows]:
                raise RuntimeError("fann_create_train failed")
        return ctypes.c_void_p(self.data[rows])

    def train(self, rows, epochs, count_clipped=False):
        costs, self.fann_mse = np.empty(epochs), np.empty(epochs)
        clipped = ctypes.c_long(0)
        if self.task.full_batch:
            self.lib.peer_train_rprop(
                ctypes.c_void_p(self.handle),
                self.train_data(rows),
                ctypes.c_long(epochs),
                _ptr(costs, ctypes.c_double),
                _ptr(self.fann_mse, ctypes.c_double),
                ctypes.byref(clipped) if count_clipped else None,
            )
        else:
            self.lib.peer_train(
                ctypes.c_void_p(self.handle),
                _ptr(self.X, self.real),
                _ptr(self.Y, self.real),
                ctypes.c_long(rows),
                ctypes.c_long(epochs),
                _ptr(costs, ctypes.c_double),
                _ptr(self.fann_mse, ctypes.c_double),
                ctypes.byref(clipped) if count_clipped else None,
            )
        self.clipped = clipped.value if count_clipped else None
        return costs

    def rule_costs(self, rows, epochs):
        """For RPROP: (what FANN's own rule computes on this run (emulated,
        fann_irpropm_costs), how many first epochs torch's rule gives the same
        costs, the rule's name); None for the other tasks (torch's rules)."""
        if self.task.rule != "rprop":
            return None
        return (
            fann_irpropm_costs(self.task, self.X[:rows], self.Y[:rows], epochs),
            2,
            "FANN 2.2's iRPROP- (emulated)",
        )

    def fann_epoch(self, rows):
        """One epoch of FANN's own fann_train_epoch (the tests compare its weights with train's)."""
        return self.lib.peer_epoch_fann(ctypes.c_void_p(self.handle), self.train_data(rows))

    def fann_weights(self):
        out = np.empty(
            int(sum(self.sizes[l] * (self.sizes[l - 1] + 1) for l in range(1, self.L + 1))),
            dtype=self.task.dtype,
        )
        self.lib.peer_get_weights(ctypes.c_void_p(self.handle), _ptr(out, self.real))
        return out

    def clipped_derivatives(self, rows, epochs):
        """Untimed: how many sigmoid derivatives FANN clipped in this run (each
        makes its gradient differ from the exact one)."""
        self.reset()
        self.train(rows, epochs, count_clipped=True)
        return self.clipped

    def __del__(self):
        for data in getattr(self, "data", {}).values():
            self.lib.peer_data_destroy(ctypes.c_void_p(data))
        self.data = {}
        if getattr(self, "handle", None):
            self.lib.peer_destroy(ctypes.c_void_p(self.handle))
            self.handle = None


class Fann(Peer):
    name = "FANN"
    about = (
        "FANN 2.2 (Debian libfann-dev) fann_train per sample: incremental, momentum 0, linear error, "
        "sigmoid (steepness 0.5) or tanh (FANN_SIGMOID_SYMMETRIC, steepness 1)"
    )
    minibatch = False  # FANN's batch training is full-batch only: no mini-batch of k rows
    optimizers = ("sgd", "rprop")  # incremental with momentum; FANN_TRAIN_RPROP (full batch)
    _libs: ClassVar[dict] = {}

    def library(self, dtype):
        dtype = np.dtype(dtype)
        if dtype not in self._libs:
            if not Path("/usr/include/fann.h").exists() and not Path("/usr/local/include/fann.h").exists():
                raise Unavailable("FANN is not installed (Debian: apt-get install libfann-dev)")
            macro, lib_name = FANN_LIBS[dtype]
            path = compile_shared(
                HERE / "fann_driver.c",
                [*FANN_FLAGS, f"-D{macro}"],
                [f"-l{lib_name}", "-lm"],
                tag="_" + _SUFFIX[dtype],
            )
            lib = ctypes.CDLL(str(path))
            lib.peer_create.restype = ctypes.c_void_p
            lib.peer_set_params.restype = ctypes.c_int
            lib.peer_set_model.restype = ctypes.c_int
            lib.peer_train.restype = None
            lib.peer_destroy.restype = None
            lib.peer_set_optimizer.restype = ctypes.c_int
            lib.peer_reset_state.restype = None
            lib.peer_data.restype = ctypes.c_void_p
            lib.peer_data_destroy.restype = None
            lib.peer_train_rprop.restype = None
            lib.peer_epoch_fann.restype = ctypes.c_double
            lib.peer_get_weights.restype = None
            self._libs[dtype] = lib
        return self._libs[dtype]

    def check(self, task):
        super().check(task)
        if not task.sigmoid_squared_error:
            fann_model(task)
        if task.rule == "rprop" and not task.full_batch:
            raise Unavailable("n/a: FANN's RPROP is full-batch")
        if task.full_batch and task.rule != "rprop":
            raise Unavailable("n/a: FANN's full-batch training here is RPROP only")
        self.library(task.dtype)

    def trainer(self, task, X, Y):
        return _FannTrainer(task, X, Y, self.library(task.dtype))
