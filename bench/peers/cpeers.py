"""Peers written in C, compiled when first used: the hand-written loop
(``native.c``, ``-O3 -march=native``) and FANN (``fann_driver.c`` against
Debian's libfann-dev).  Called through ctypes, which releases the GIL."""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
from pathlib import Path

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
        result = subprocess.run([*command, str(source), "-o", str(partial), *libs], capture_output=True, text=True)
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
            ctypes.c_int(self.L), _ptr(self.sizes, ctypes.c_long), _ptr(self.params, self.real),
            _ptr(self.X, self.real), _ptr(self.Y, self.real), ctypes.c_long(rows), ctypes.c_long(epochs),
        )
        if not self.task.sigmoid_squared_error:  # issue 10's models: the *_model loops
            model = (ctypes.c_int * (self.L + 1))(*[ACTIVATIONS.index(a) for a in self.task.activations],
                                                  LOSSES.index(self.task.loss))
            if self.task.batch_size == 1:
                status = self.lib.train_online_model(*common, ctypes.c_double(self.task.lr),
                                                     _ptr(costs, ctypes.c_double), model)
            else:
                status = self.lib.train_minibatch_model(*common, ctypes.c_long(self.task.batch_size),
                                                        ctypes.c_double(self.task.lr), _ptr(costs, ctypes.c_double),
                                                        model)
        elif self.task.batch_size == 1:
            status = self.lib.train_online(*common, ctypes.c_double(self.task.lr), _ptr(costs, ctypes.c_double))
        else:
            status = self.lib.train_minibatch(
                *common, ctypes.c_long(self.task.batch_size), ctypes.c_double(self.task.lr),
                _ptr(costs, ctypes.c_double),
            )
        if status != 0:
            raise RuntimeError(f"native.c training failed with status {status}")
        return costs


class Native(Peer):
    name = "C"
    about = "hand-written C loops (bench/peers/native.c), gcc " + " ".join(NATIVE_FLAGS) + ", single thread"
    _libs = {}

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

FANN_LIBS = {np.dtype(np.float64): ("FANN_F64", "doublefann"), np.dtype(np.float32): ("FANN_F32", "floatfann")}


# fastbp's activations as FANN's (enum fann_activationfunc_enum in fann_data.h) and steepness:
# FANN_SIGMOID = 1 / (1 + exp(-2 s x)), FANN_SIGMOID_SYMMETRIC = tanh(s x), FANN_LINEAR = s x.
FANN_LINEAR, FANN_SIGMOID, FANN_SIGMOID_SYMMETRIC = 0, 3, 5
FANN_ACTIVATIONS = {"sigmoid": (FANN_SIGMOID, 0.5), "tanh": (FANN_SIGMOID_SYMMETRIC, 1.0),
                    "identity": (FANN_LINEAR, 1.0)}


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


class _FannTrainer(_CTrainer):
    def __init__(self, task, X, Y, lib):
        super().__init__(task, X, Y)
        self.lib = lib
        self.handle = lib.peer_create(ctypes.c_int(self.L), _ptr(self.sizes, ctypes.c_long),
                                      _ptr(self.initial, self.real), ctypes.c_double(task.lr))
        if not self.handle:
            raise RuntimeError("fann_create_standard_array failed")
        if not task.sigmoid_squared_error:  # the note's model: peer_create's settings, as before issue 10
            functions, steepness, lr = fann_model(task)
            status = lib.peer_set_model(ctypes.c_void_p(self.handle), ctypes.c_int(self.L),
                                        (ctypes.c_int * self.L)(*functions), (ctypes.c_double * self.L)(*steepness),
                                        ctypes.c_double(lr))
            if status != 0:
                raise RuntimeError("FANN's layer count does not match the layer sizes")
        self.fann_mse = None
        self.reset()

    def reset(self):
        status = self.lib.peer_set_params(ctypes.c_void_p(self.handle), ctypes.c_int(self.L),
                                          _ptr(self.sizes, ctypes.c_long), _ptr(self.initial, self.real))
        if status != 0:
            raise RuntimeError("FANN's connection count does not match the layer sizes")

    def train(self, rows, epochs, count_clipped=False):
        costs, self.fann_mse = np.empty(epochs), np.empty(epochs)
        clipped = ctypes.c_long(0)
        self.lib.peer_train(ctypes.c_void_p(self.handle), _ptr(self.X, self.real), _ptr(self.Y, self.real),
                            ctypes.c_long(rows), ctypes.c_long(epochs), _ptr(costs, ctypes.c_double),
                            _ptr(self.fann_mse, ctypes.c_double), ctypes.byref(clipped) if count_clipped else None)
        self.clipped = clipped.value if count_clipped else None
        return costs

    def clipped_derivatives(self, rows, epochs):
        """Untimed: how many sigmoid derivatives FANN clipped in this run (each
        makes its gradient differ from the exact one)."""
        self.reset()
        self.train(rows, epochs, count_clipped=True)
        return self.clipped

    def __del__(self):
        if getattr(self, "handle", None):
            self.lib.peer_destroy(ctypes.c_void_p(self.handle))
            self.handle = None


class Fann(Peer):
    name = "FANN"
    about = ("FANN 2.2 (Debian libfann-dev) fann_train per sample: incremental, momentum 0, linear error, "
             "sigmoid (steepness 0.5) or tanh (FANN_SIGMOID_SYMMETRIC, steepness 1)")
    minibatch = False  # FANN's batch training is full-batch only: no mini-batch of k rows
    _libs = {}

    def library(self, dtype):
        dtype = np.dtype(dtype)
        if dtype not in self._libs:
            if not Path("/usr/include/fann.h").exists() and not Path("/usr/local/include/fann.h").exists():
                raise Unavailable("FANN is not installed (Debian: apt-get install libfann-dev)")
            macro, lib_name = FANN_LIBS[dtype]
            path = compile_shared(HERE / "fann_driver.c", [*FANN_FLAGS, f"-D{macro}"], [f"-l{lib_name}", "-lm"],
                                  tag="_" + _SUFFIX[dtype])
            lib = ctypes.CDLL(str(path))
            lib.peer_create.restype = ctypes.c_void_p
            lib.peer_set_params.restype = ctypes.c_int
            lib.peer_set_model.restype = ctypes.c_int
            lib.peer_train.restype = None
            lib.peer_destroy.restype = None
            self._libs[dtype] = lib
        return self._libs[dtype]

    def check(self, task):
        super().check(task)
        if not task.sigmoid_squared_error:
            fann_model(task)
        self.library(task.dtype)

    def trainer(self, task, X, Y):
        return _FannTrainer(task, X, Y, self.library(task.dtype))
