"""Type stubs for the compiled kernels (fastbp/_kernels.pyx; the copies built
for other instruction sets, _kernels_v3 and _kernels_v4, are the same module).

Every array argument is a NumPy array of one floating dtype, float32 or
float64 (all arrays of one call share it); matrices are C-contiguous 2-D.
``sizes``, ``order`` and ``model`` (an activation code per layer, then the
loss code: ``fastbp._model.codes``; ``None`` for the note's model) are
``numpy.intp`` arrays.  See ``fastbp.reference``
for the conventions and the flat-buffer layout.
"""

from typing import Final, TypeVar, final

import numpy as np
import numpy.typing as npt

_F = TypeVar("_F", np.float32, np.float64)
_Array = npt.NDArray[_F]
_Index = npt.NDArray[np.intp]

BACKEND_NAME: Final[str]
ISA: Final[str]

def cpu_runs(isa: str) -> bool: ...
def sigmoid(z: _Array[_F], out: _Array[_F]) -> None: ...
def sigmoid_derivative(a: _Array[_F], out: _Array[_F]) -> None: ...
def activate(z: _Array[_F], out: _Array[_F], activation: int) -> None: ...
def activation_derivative(a: _Array[_F], out: _Array[_F], activation: int) -> None: ...
def forward_layer(
    W: _Array[_F], b: _Array[_F], x: _Array[_F], out: _Array[_F], activation: int = 0
) -> None: ...
def cost(
    o: _Array[_F], y: _Array[_F], z: _Array[_F] | None = None, activation: int = 0, loss: int = 0
) -> float: ...
def output_delta(
    o: _Array[_F], y: _Array[_F], delta: _Array[_F], activation: int = 0, loss: int = 0
) -> None: ...
def hidden_delta(
    W: _Array[_F], delta_next: _Array[_F], a: _Array[_F], delta: _Array[_F], activation: int = 0
) -> None: ...
def update(
    W: _Array[_F], b: _Array[_F], delta: _Array[_F], a_prev: _Array[_F], lr: float, update_biases: bool
) -> None: ...
def forward(
    params: _Array[_F], sizes: _Index, x: _Array[_F], activations: _Array[_F], model: _Index | None = None
) -> None: ...
def gradients(
    params: _Array[_F],
    sizes: _Index,
    x: _Array[_F],
    y: _Array[_F],
    activations: _Array[_F],
    deltas: _Array[_F],
    grads: _Array[_F],
    model: _Index | None = None,
) -> float: ...
def train_step(
    params: _Array[_F],
    sizes: _Index,
    x: _Array[_F],
    y: _Array[_F],
    lr: float,
    update_biases: bool,
    activations: _Array[_F],
    deltas: _Array[_F],
    model: _Index | None = None,
) -> float: ...
def shuffle(order: _Index, rng_state: npt.NDArray[np.uint64]) -> None: ...
def train(
    params: _Array[_F],
    sizes: _Index,
    X: _Array[_F],
    Y: _Array[_F],
    order: _Index,
    rng_state: npt.NDArray[np.uint64],
    shuffle: bool,
    lr: float,
    batch_size: int,
    update_biases: bool,
    costs: npt.NDArray[np.float64],
    activations: _Array[_F],
    deltas: _Array[_F],
    backup: _Array[_F],
    model: _Index | None = None,
    optimizer: tuple[int, npt.NDArray[np.float64], _Array[_F], npt.NDArray[np.float64], _Array[_F]]
    | None = None,
) -> int: ...
def forward_batch(
    params: _Array[_F],
    sizes: _Index,
    X: _Array[_F],
    out: _Array[_F],
    activations: _Array[_F],
    model: _Index | None = None,
) -> None: ...
def mean_cost(
    params: _Array[_F],
    sizes: _Index,
    X: _Array[_F],
    Y: _Array[_F],
    activations: _Array[_F],
    model: _Index | None = None,
) -> float: ...

@final
class Door:
    """One network's compiled per-call entry points (fastbp/_door.pxi): each
    returns ``None`` when an argument needs ``Network``'s Python validation first."""

    @property
    def params(self) -> npt.NDArray[np.floating]: ...
    @property
    def backup(self) -> npt.NDArray[np.floating]: ...
    def __init__(self, params: npt.NDArray[np.floating], sizes: _Index, model: _Index) -> None: ...
    def forward(self, x: object) -> npt.NDArray[np.floating] | None: ...
    def cost(self, x: object, y: object) -> float | None: ...
    def gradients(
        self, x: object, y: object
    ) -> tuple[list[npt.NDArray[np.floating]], list[npt.NDArray[np.floating]]] | None: ...
    def begin_write(self, what: str) -> None: ...
    def end_write(self) -> None: ...
    def step(self, x: object, y: object, lr: object, update_biases: object) -> float | None: ...
    def train(
        self,
        X: object,
        Y: object,
        epochs: object,
        lr: object,
        batch_size: object,
        shuffle: object,
        seed: object,
        update_biases: object,
    ) -> npt.NDArray[np.float64] | None: ...
