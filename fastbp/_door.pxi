# The door: one network's per-call entry points, compiled.  Included by
# _kernels.pyx (so every instruction-set copy has its own, calling that
# copy's helpers directly).
#
# ``fastbp.Network`` keeps the user-facing API and the rules of what is
# accepted (``fastbp._validation``); the door makes the common call cheap.
# Each method first checks, in C and in one pass per argument, that every
# argument can be used exactly as given: an ndarray (not a subclass) of the
# network's dtype, C-contiguous, aligned, in native byte order, of the right
# shape, finite, not overlapping the parameters; counts and rates of exact
# types and in range.  Then it computes straight away.  Anything else -
# lists, other dtypes or layouts, bad values - makes it return ``None``, and
# ``Network`` runs its Python validation, which either raises the error the
# user sees or converts the argument once (a copy) and comes back through
# the door.  So the door never decides what is an error and cannot drift from
# ``_validation``'s messages; it only recognises what needs no conversion.

from cpython.pythread cimport (
    NOWAIT_LOCK,
    WAIT_LOCK,
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_get_thread_ident,
    PyThread_release_lock,
    PyThread_type_lock,
)

cdef extern from "Python.h":
    ctypedef struct PyThreadState:
        pass
    PyThreadState* PyEval_SaveThread()
    void PyEval_RestoreThread(PyThreadState*)
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check
from cpython.long cimport PyLong_CheckExact
from cpython.mem cimport PyMem_Free, PyMem_Malloc
cimport cython
cimport numpy as cnp

import numpy as np

from fastbp import _errors

cnp.import_array()

cdef unsigned long _MAIN_THREAD = threading.main_thread().ident
cdef object _Generator = np.random.Generator

cdef enum:
    BLOCK_ROWS = 256          # rows per block in batch forward passes and costs (BLAS)
    GIL_FREE_WORK = 1 << 15   # multiply-adds above which a call releases the GIL

# A row of W updated by step s_k against inputs a: w - s_k a_j stays finite for
# every finite w when |s_k| max(1, max_j |a_j|) is below half an ulp of the
# dtype's largest value (2^970 for float64, 2^103 for float32), with a factor
# 2 of margin for the rounding of the bound itself.
cdef double SAFE_STEP_DOUBLE = 2.0 ** 969
cdef double SAFE_STEP_FLOAT = 2.0 ** 102


cdef inline PyThreadState* _release_gil(bint worth_it) noexcept:
    # Release the GIL around work long enough to let other threads run (and
    # keep it around tiny work, where releasing costs more than the work).
    return PyEval_SaveThread() if worth_it else NULL


cdef inline void _restore_gil(PyThreadState* released) noexcept:
    if released != NULL:
        PyEval_RestoreThread(released)


# fastbp_finite_amax_d/f (fastbp/_kernels.h, declared in _kernels.pyx):
# whether v[0..n) are all finite, and max |v[i]|, in one vectorised pass on the bits.


cdef inline bint _finite_amax(const floating* v, Py_ssize_t n, double* amax) noexcept nogil:
    # Whether every v[i] is finite, and max |v[i]| (fastbp_finite_amax_* above).
    if floating is double:
        return fastbp_finite_amax_d(v, n, amax)
    else:
        return fastbp_finite_amax_f(v, n, amax)


cdef void _forward_into(const floating* P, const Py_ssize_t* S, Py_ssize_t L, const floating* X,
                        Py_ssize_t n, floating* out, floating* act, Py_ssize_t m,
                        const Py_ssize_t* M) noexcept nogil:
    # out[i] = the output for row X[i], m rows at a time (forward_batch).
    cdef Py_ssize_t start = 0, rows, n_in = S[0], n_out = S[L]
    cdef floating* outputs
    while start < n:
        rows = m if start + m <= n else n - start
        outputs = _forward_rows(P, S, L, X + start * n_in, rows, act, M)
        memcpy(out + start * n_out, outputs, rows * n_out * sizeof(floating))
        start += rows


cdef double _cost_of(const floating* P, const Py_ssize_t* S, Py_ssize_t L, const floating* X,
                     const floating* Y, Py_ssize_t n, floating* act, Py_ssize_t m,
                     const Py_ssize_t* M) noexcept nogil:
    # The mean over the n rows of the per-sample J (mean_cost).
    cdef Py_ssize_t start = 0, rows, n_in = S[0], n_out = S[L]
    cdef floating* outputs
    cdef double total = 0
    while start < n:
        rows = m if start + m <= n else n - start
        outputs = _forward_rows(P, S, L, X + start * n_in, rows, act, M)
        total += _rows_loss(outputs, Y + start * n_out, rows, n_out, M, L)
        start += rows
    return total / n


cdef double _gradients_of(const floating* P, const Py_ssize_t* S, Py_ssize_t L, const floating* x,
                          const floating* y, floating* act, floating* deltas,
                          floating* grads, const Py_ssize_t* M) noexcept nogil:
    # dJ/dW, dJ/db of one sample into grads (laid out like params); returns J.
    cdef Py_ssize_t l, n_in, n_out, p = 0, a = 0, d = 0
    cdef double J
    memcpy(act, x, S[0] * sizeof(floating))
    _forward(P, S, L, act, M)
    J = _backward(<floating*>P, S, L, act, y, deltas, M)   # reads params only
    for l in range(1, L + 1):
        n_in = S[l - 1]
        n_out = S[l]
        _outer(deltas + d, act + a, grads + p, grads + p + n_out * n_in, n_out, n_in)
        p += n_out * (n_in + 1)
        a += n_in
        d += n_out
    return J


cdef int _step_of(floating* P, const Py_ssize_t* S, Py_ssize_t L, const floating* x,
                  const floating* y, double lr, bint update_biases, double x_amax,
                  floating* act, floating* deltas, floating* backup, Py_ssize_t n_params,
                  double* J, const Py_ssize_t* M) noexcept nogil:
    # One online update (train_step); returns 1 when it was applied, 0 when it
    # diverged (the cost or a weight would be NaN or inf) and params are as before.
    #
    # No copy of the parameters: J and every delta come before any write, and
    # each row's step s_k = lr delta_k is checked against SAFE_STEP (above):
    # when all pass, no weight can leave the finite range and the update goes
    # ahead.  Only a step that fails the bound (a huge or non-finite delta,
    # or huge inputs) pays for a backup copy, update, check and restore.
    # The updates walk the rows backwards: the forward pass read the last
    # rows last, so they are still in cache (_update_forward).
    cdef Py_ssize_t l, k, n_in, n_out, a = 0, d = 0
    cdef double amax, limit, step, safe = SAFE_STEP_FLOAT if floating is float else SAFE_STEP_DOUBLE
    cdef bint within = True
    memcpy(act, x, S[0] * sizeof(floating))
    _forward(P, S, L, act, M)
    J[0] = _backward(P, S, L, act, y, deltas, M)
    if not isfinite(J[0]):
        return 0
    for l in range(1, L + 1):
        n_in = S[l - 1]
        n_out = S[l]
        if l == 1:
            amax = x_amax
        else:
            _finite_amax(act + a, n_in, &amax)
        limit = safe / (amax if amax > 1 else 1.0)
        for k in range(n_out):
            step = <double><floating>(lr * deltas[d + k])
            within = within & ((step if step >= 0 else -step) < limit)   # NaN fails too
        a += n_in
        d += n_out
    if within:
        _update_all(P, S, L, act, deltas, lr, update_biases, NULL, True, M)
        return 1
    memcpy(backup, P, n_params * sizeof(floating))
    _update_all(P, S, L, act, deltas, lr, update_biases, NULL, True, M)
    if _all_finite(P, n_params):
        return 1
    memcpy(P, backup, n_params * sizeof(floating))
    return 0


cdef bint _probabilities(const floating* Y, Py_ssize_t rows, Py_ssize_t n, bint rows_sum_to_1,
                         double tolerance) noexcept nogil:
    # Every Y value in [0, 1], and (rows_sum_to_1) every row's sum within
    # ``tolerance`` of 1 (Door._targets_ok).
    cdef Py_ssize_t i, r, k
    cdef bint inside = True
    cdef double total
    for i in range(rows * n):
        inside = inside & (Y[i] >= 0) & (Y[i] <= 1)
    if not inside or not rows_sum_to_1:
        return inside
    for r in range(rows):
        total = 0
        for k in range(n):
            total += <double>Y[r * n + k]
        if fabs(total - 1.0) > tolerance:
            return False
    return True


@cython.auto_pickle(False)   # Network pickles its parameters, not the door
@cython.final
cdef class Door:
    """The compiled per-call entry points of one network (see the top of
    ``fastbp/_door.pxi``): ``forward``, ``cost``, ``gradients``, ``step`` and
    ``train`` return ``None`` when an argument needs the Python validation
    first, and otherwise their result.  ``begin_write``/``end_write`` hold the
    lock that serialises the calls writing the parameters."""

    cdef readonly object params           # the network's flat parameters (owned by Network)
    cdef object sizes_array               # intp, read-only
    cdef const Py_ssize_t* S
    cdef object model_array               # intp, read-only: an activation code per layer, the loss code
    cdef const Py_ssize_t* M
    cdef bint cross_entropy, softmax      # the targets the loss needs (see _targets_ok)
    cdef Py_ssize_t L, n_in, n_out, n_params, width, width_d, max_size
    cdef int typenum
    cdef bint is_float
    cdef size_t itemsize
    cdef char* P
    # Scratch for the calls that only read (forward, cost, gradients): one
    # block of rows.  A second thread evaluating at the same time gets its own.
    cdef char* read_scratch
    cdef Py_ssize_t read_capacity         # elements
    cdef bint read_busy
    # The write side (step, train), under the lock.
    cdef PyThread_type_lock lock
    cdef unsigned long writer
    cdef bint writing
    cdef readonly object backup            # room for the parameters before a step or epoch
    cdef object train_activations, train_deltas
    cdef Py_ssize_t train_rows

    def __cinit__(self, params, sizes, model):
        self.lock = PyThread_allocate_lock()
        if self.lock == NULL:
            raise MemoryError("could not allocate the network's lock")

    def __init__(self, params, sizes, model):
        if type(params) is not np.ndarray or params.ndim != 1 or params.dtype not in (np.float32, np.float64) \
                or not params.flags.c_contiguous or not params.flags.aligned or not params.flags.writeable:
            raise TypeError("params must be a writeable, aligned, C-contiguous 1-D float32 or float64 array")
        sizes = np.array(sizes, dtype=np.intp)
        check_network(params, sizes, np.empty(activation_width(sizes), dtype=params.dtype))
        sizes.flags.writeable = False
        model = np.array(_model_codes(sizes, model), dtype=np.intp)
        model.flags.writeable = False
        self.params = params
        self.sizes_array = sizes
        self.S = <const Py_ssize_t*>cnp.PyArray_DATA(sizes)
        self.model_array = model
        self.M = <const Py_ssize_t*>cnp.PyArray_DATA(model)
        self.L = sizes.shape[0] - 1
        self.n_in = sizes[0]
        self.n_out = sizes[self.L]
        self.n_params = params.shape[0]
        self.cross_entropy = self.M[self.L] == CROSS_ENTROPY
        self.softmax = self.M[self.L - 1] == SOFTMAX
        self.width = activation_width(sizes)
        self.width_d = int(sizes.sum()) - self.n_in
        self.max_size = int(sizes.max())
        self.is_float = params.dtype == np.float32
        self.typenum = cnp.NPY_FLOAT if self.is_float else cnp.NPY_DOUBLE
        self.itemsize = params.dtype.itemsize
        self.P = <char*>cnp.PyArray_DATA(params)
        self.backup = np.empty_like(params)
        self.train_rows = 0

    def __dealloc__(self):
        if self.read_scratch != NULL:
            PyMem_Free(self.read_scratch)
        if self.lock != NULL:
            PyThread_free_lock(self.lock)

    # ------------------------------------------------------------------
    # What can be used as given
    # ------------------------------------------------------------------

    cdef int _accept(self, object value, Py_ssize_t width, int ndims, char** data, Py_ssize_t* rows,
                     double* amax):
        # 1 or 2 (the array's ndim) when ``value`` can go to the kernels as it
        # is: ndarray of the network's dtype, C-contiguous, aligned, native
        # order, shape (width,) (ndims & 1) or (n >= 1, width) (ndims & 2),
        # finite, not overlapping the parameters.  0 otherwise.
        cdef cnp.ndarray a
        cdef int nd
        cdef char* start
        cdef char* end
        cdef Py_ssize_t n
        cdef bint finite
        if type(value) is not cnp.ndarray:
            return 0
        a = <cnp.ndarray>value
        if cnp.PyArray_TYPE(a) != self.typenum or not cnp.PyArray_ISCARRAY_RO(a) \
                or not cnp.PyArray_ISNOTSWAPPED(a):
            return 0
        nd = cnp.PyArray_NDIM(a)
        if nd == 1 and ndims & 1 and cnp.PyArray_DIMS(a)[0] == width:
            rows[0] = 1
        elif nd == 2 and ndims & 2 and cnp.PyArray_DIMS(a)[1] == width and cnp.PyArray_DIMS(a)[0] >= 1:
            rows[0] = cnp.PyArray_DIMS(a)[0]
        else:
            return 0
        start = <char*>cnp.PyArray_DATA(a)
        n = rows[0] * width
        end = start + n * self.itemsize
        if start < self.P + self.n_params * self.itemsize and end > self.P:
            return 0   # aliases the parameters: Network copies it
        if self.is_float:
            finite = _finite_amax(<const float*>start, n, amax)
        else:
            finite = _finite_amax(<const double*>start, n, amax)
        if not finite:
            return 0
        data[0] = start
        return nd

    cdef bint _targets_ok(self, char* data, Py_ssize_t rows):
        # Whether ``rows`` accepted targets suit the loss, by the rule of
        # fastbp._validation.targets, computed the same way (so the door and
        # the Python validation never disagree): for the cross-entropy every
        # value in [0, 1]; under a softmax every row's sum, added in order in
        # double, within 2^-12 (float32) or 2^-26 (float64) of 1.
        if not self.cross_entropy:
            return True
        if self.is_float:
            return _probabilities(<const float*>data, rows, self.n_out, self.softmax, 2.0 ** -12)
        return _probabilities(<const double*>data, rows, self.n_out, self.softmax, 2.0 ** -26)

    cdef char* _borrow(self, Py_ssize_t elements, bint* own) except NULL:
        # Read scratch of ``elements`` values: the door's own when free (grown
        # if need be), else a private one the caller frees (_give_back).
        cdef char* grown
        if not self.read_busy:
            if elements > self.read_capacity:
                grown = <char*>PyMem_Malloc(elements * self.itemsize)
                if grown == NULL:
                    raise MemoryError()
                PyMem_Free(self.read_scratch)
                self.read_scratch = grown
                self.read_capacity = elements
            self.read_busy = True
            own[0] = False
            return self.read_scratch
        grown = <char*>PyMem_Malloc(elements * self.itemsize)
        if grown == NULL:
            raise MemoryError()
        own[0] = True
        return grown

    cdef void _give_back(self, char* scratch, bint own) noexcept:
        if own:
            PyMem_Free(scratch)
        else:
            self.read_busy = False

    # ------------------------------------------------------------------
    # Computations that change nothing
    # ------------------------------------------------------------------

    def forward(self, x):
        """``Network.forward``'s result for ``x``, or ``None`` (validate first)."""
        cdef PyThreadState* released
        cdef char* data
        cdef Py_ssize_t rows, m
        cdef double amax
        cdef cnp.npy_intp dims[2]
        cdef int nd = self._accept(x, self.n_in, 3, &data, &rows, &amax)
        cdef char* act
        cdef bint own, finite
        if nd == 0:
            return None
        dims[0] = rows if nd == 2 else self.n_out
        dims[1] = self.n_out
        out = cnp.PyArray_EMPTY(nd, dims, self.typenum, 0)
        cdef char* o = <char*>cnp.PyArray_DATA(<cnp.ndarray>out)
        m = rows if rows < BLOCK_ROWS else BLOCK_ROWS
        act = self._borrow(m * self.width, &own)
        released = _release_gil(rows * self.n_params > GIL_FREE_WORK)
        if self.is_float:
            _forward_into(<const float*>self.P, self.S, self.L, <const float*>data, rows,
                          <float*>o, <float*>act, m, self.M)
            finite = _finite_amax(<const float*>o, rows * self.n_out, &amax)
        else:
            _forward_into(<const double*>self.P, self.S, self.L, <const double*>data, rows,
                          <double*>o, <double*>act, m, self.M)
            finite = _finite_amax(<const double*>o, rows * self.n_out, &amax)
        _restore_gil(released)
        self._give_back(act, own)
        if not finite:
            raise _errors.not_finite("the forward pass")
        return out

    def cost(self, x, y):
        """``Network.cost``'s result for ``x``, ``y``, or ``None`` (validate first)."""
        cdef PyThreadState* released
        cdef char* xd
        cdef char* yd
        cdef Py_ssize_t rows, y_rows, m
        cdef double amax, J
        cdef int nd = self._accept(x, self.n_in, 3, &xd, &rows, &amax)
        cdef char* act
        cdef bint own
        if nd == 0 or self._accept(y, self.n_out, nd, &yd, &y_rows, &amax) == 0 or y_rows != rows \
                or not self._targets_ok(yd, rows):
            return None
        m = rows if rows < BLOCK_ROWS else BLOCK_ROWS
        act = self._borrow(m * self.width, &own)
        released = _release_gil(rows * self.n_params > GIL_FREE_WORK)
        if self.is_float:
            J = _cost_of(<const float*>self.P, self.S, self.L, <const float*>xd, <const float*>yd,
                         rows, <float*>act, m, self.M)
        else:
            J = _cost_of(<const double*>self.P, self.S, self.L, <const double*>xd, <const double*>yd,
                         rows, <double*>act, m, self.M)
        _restore_gil(released)
        self._give_back(act, own)
        if not isfinite(J):
            raise _errors.not_finite("the cost")
        return J

    def gradients(self, x, y):
        """``Network.gradients``'s result for ``x``, ``y``, or ``None`` (validate first)."""
        cdef PyThreadState* released
        cdef char* xd
        cdef char* yd
        cdef Py_ssize_t rows, l, n_in, n_out, p = 0
        cdef double amax
        cdef cnp.npy_intp dims[2]
        cdef char* act
        cdef bint own, finite
        if self._accept(x, self.n_in, 1, &xd, &rows, &amax) == 0 \
                or self._accept(y, self.n_out, 1, &yd, &rows, &amax) == 0 or not self._targets_ok(yd, 1):
            return None
        dims[0] = self.n_params
        grads = cnp.PyArray_EMPTY(1, dims, self.typenum, 0)
        cdef char* g = <char*>cnp.PyArray_DATA(<cnp.ndarray>grads)
        act = self._borrow(self.width + self.width_d, &own)
        released = _release_gil(self.n_params > GIL_FREE_WORK)
        if self.is_float:
            _gradients_of(<const float*>self.P, self.S, self.L, <const float*>xd, <const float*>yd,
                          <float*>act, <float*>act + self.width, <float*>g, self.M)
            finite = _finite_amax(<const float*>g, self.n_params, &amax)
        else:
            _gradients_of(<const double*>self.P, self.S, self.L, <const double*>xd, <const double*>yd,
                          <double*>act, <double*>act + self.width, <double*>g, self.M)
            finite = _finite_amax(<const double*>g, self.n_params, &amax)
        _restore_gil(released)
        self._give_back(act, own)
        if not finite:
            raise _errors.not_finite("a gradient")
        dW, db = [], []
        for l in range(1, self.L + 1):
            n_in = self.S[l - 1]
            n_out = self.S[l]
            dims[0] = n_out
            dims[1] = n_in
            dW.append(self._view(grads, 2, dims, p))
            db.append(self._view(grads, 1, dims, p + n_out * n_in))
            p += n_out * (n_in + 1)
        return dW, db

    cdef object _view(self, object base, int nd, cnp.npy_intp* dims, Py_ssize_t offset):
        # A view of ``base`` starting ``offset`` values in, of shape dims[:nd].
        view = cnp.PyArray_SimpleNewFromData(
            nd, dims, self.typenum, <char*>cnp.PyArray_DATA(<cnp.ndarray>base) + offset * self.itemsize)
        cnp.set_array_base(<cnp.ndarray>view, base)
        return view

    # ------------------------------------------------------------------
    # Learning
    # ------------------------------------------------------------------

    def begin_write(self, str what):
        """Take the write lock (another thread waits its turn); ``RuntimeError``
        when this thread holds it already (a train() callback training its own network)."""
        cdef unsigned long me = PyThread_get_thread_ident()
        if self.writing and self.writer == me:
            raise _errors.reentered(what)
        if not PyThread_acquire_lock(self.lock, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self.lock, WAIT_LOCK)
        self.writer = me
        self.writing = True

    def end_write(self):
        """Release the write lock taken by ``begin_write``."""
        self.writing = False
        PyThread_release_lock(self.lock)

    def step(self, x, y, lr, update_biases):
        """``Network.step``'s result, or ``None`` (validate first)."""
        cdef PyThreadState* released
        cdef char* xd
        cdef char* yd
        cdef Py_ssize_t rows
        cdef double x_amax, y_amax, rate, J = 0
        cdef int applied
        cdef bint biases = update_biases is True
        cdef char* act
        cdef char* dl
        cdef char* backup
        if self._accept(x, self.n_in, 1, &xd, &rows, &x_amax) == 0 \
                or self._accept(y, self.n_out, 1, &yd, &rows, &y_amax) == 0 or not self._targets_ok(yd, 1):
            return None
        if PyFloat_Check(lr):
            rate = PyFloat_AS_DOUBLE(lr)
        elif PyLong_CheckExact(lr) and 0 < lr < 2**53:
            rate = <double>lr
        else:
            return None
        if not (rate > 0 and isfinite(rate)) or (update_biases is not True and update_biases is not False):
            return None
        self.begin_write("step")
        try:
            act = self._train_scratch(1)
            dl = <char*>cnp.PyArray_DATA(<cnp.ndarray>self.train_deltas)
            backup = <char*>cnp.PyArray_DATA(<cnp.ndarray>self.backup)
            released = _release_gil(self.n_params > GIL_FREE_WORK)
            if self.is_float:
                applied = _step_of(<float*>self.P, self.S, self.L, <const float*>xd, <const float*>yd,
                                   rate, biases, x_amax, <float*>act, <float*>dl, <float*>backup,
                                   self.n_params, &J, self.M)
            else:
                applied = _step_of(<double*>self.P, self.S, self.L, <const double*>xd, <const double*>yd,
                                   rate, biases, x_amax, <double*>act, <double*>dl, <double*>backup,
                                   self.n_params, &J, self.M)
            _restore_gil(released)
        finally:
            self.end_write()
        if not applied:
            raise _errors.diverged(f"the step with lr={rate}")
        return J

    cdef char* _train_scratch(self, Py_ssize_t batch_size) except NULL:
        # Activations for max(batch_size, 2) samples and deltas for batch_size,
        # kept from call to call (grown when a larger batch asks); under the lock.
        cdef Py_ssize_t rows
        if batch_size > self.train_rows or self.train_activations is None:
            rows = batch_size if batch_size > 2 else 2
            self.train_activations = aligned_empty(rows * self.width, self.params.dtype)
            self.train_deltas = aligned_empty(rows * self.width_d, self.params.dtype)
            self.train_rows = rows
        return <char*>cnp.PyArray_DATA(<cnp.ndarray>self.train_activations)

    def train(self, X, Y, epochs, lr, batch_size, shuffle, seed, update_biases):
        """``Network.train``'s result (without callback or progress), or ``None``
        (validate first)."""
        cdef PyThreadState* released
        cdef char* xd
        cdef char* yd
        cdef Py_ssize_t n, y_rows, n_epochs, batch, done
        cdef double amax, rate
        cdef cnp.npy_intp dims[1]
        cdef Run run
        cdef bint interrupted = False
        cdef uint64_t state = 0
        cdef char* act
        cdef char* dl
        cdef char* backup
        if self._accept(X, self.n_in, 2, &xd, &n, &amax) == 0 \
                or self._accept(Y, self.n_out, 2, &yd, &y_rows, &amax) == 0 or y_rows != n \
                or not self._targets_ok(yd, n):
            return None
        if not PyLong_CheckExact(epochs) or not 1 <= epochs < 2**62:
            return None
        n_epochs = epochs
        if PyFloat_Check(lr):
            rate = PyFloat_AS_DOUBLE(lr)
        elif PyLong_CheckExact(lr) and 0 < lr < 2**53:
            rate = <double>lr
        else:
            return None
        if not (rate > 0 and isfinite(rate)):
            return None
        if not PyLong_CheckExact(batch_size) or not 1 <= batch_size < 2**62:
            return None
        batch = batch_size if batch_size < n else n
        if shuffle is not True and shuffle is not False or update_biases is not True and update_biases is not False:
            return None
        if batch > 1 and self.max_size > 2**31 - 1:
            return None
        dims[0] = n_epochs
        try:
            costs = cnp.PyArray_EMPTY(1, dims, cnp.NPY_DOUBLE, 0)
        except (MemoryError, ValueError):
            return None   # Network says why
        # The RNG state that shuffles: drawn as Network always drew it; a seed
        # with no shuffle to drive is not drawn from (nothing could observe
        # it) unless it is a Generator, whose stream advances as before.
        if seed is None or (PyLong_CheckExact(seed) and seed >= 0):
            if shuffle is True:
                state = np.random.default_rng(seed).integers(0, 2**64, size=1, dtype=np.uint64)[0]
        elif isinstance(seed, _Generator):
            state = seed.integers(0, 2**64, size=1, dtype=np.uint64)[0]
        else:
            return None
        order = np.arange(n, dtype=np.intp) if shuffle is True else None
        self.begin_write("train")
        try:
            act = self._train_scratch(batch)
            dl = <char*>cnp.PyArray_DATA(<cnp.ndarray>self.train_deltas)
            backup = <char*>cnp.PyArray_DATA(<cnp.ndarray>self.backup)
            run.L = self.L
            run.n = n
            run.n_params = self.n_params
            run.batch_size = batch
            run.sizes = self.S
            run.model = self.M
            run.order = <Py_ssize_t*>cnp.PyArray_DATA(<cnp.ndarray>order) if order is not None else NULL
            run.rng_state = &state
            run.shuffle = shuffle is True
            run.update_biases = update_biases is True
            run.watch_signals = PyThread_get_thread_ident() == _MAIN_THREAD
            run.lr = rate
            run.costs = <double*>cnp.PyArray_DATA(<cnp.ndarray>costs)
            run.rule = NULL   # optimizers take Network's Python path
            released = _release_gil(n_epochs * n * self.n_params > GIL_FREE_WORK)
            if self.is_float:
                done = _run_epochs(&run, <float*>self.P, <const float*>xd, <const float*>yd,
                                   <float*>act, <float*>dl, <float*>backup, n_epochs, &interrupted)
            else:
                done = _run_epochs(&run, <double*>self.P, <const double*>xd, <const double*>yd,
                                   <double*>act, <double*>dl, <double*>backup, n_epochs, &interrupted)
            _restore_gil(released)
            if interrupted:
                _reraise()
        finally:
            self.end_write()
        if done < n_epochs:
            raise _errors.diverged(f"epoch {done + 1} of {n_epochs} with lr={rate} (batch_size={batch})",
                                   costs=costs[:done].copy())
        return costs
