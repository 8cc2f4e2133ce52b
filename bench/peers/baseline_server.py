"""The child process of the ``fastbp-base`` peer (fastbp_peer.py): imports
fastbp from its working directory (another checkout, put first on sys.path by
PYTHONPATH) and answers one JSON command per line on stdin:

    {"load": "data.npz", "layers": L, "dtype": ..., "lr": ..., "batch_size": ...}
    {"reset": true}                 # the initial weights again
    {"train": [rows, epochs]}       # net.train on the first rows: the costs

with ``{"result": ...}`` or ``{"error": "..."}`` on stdout."""

import json
import sys


def main():
    import numpy as np

    import fastbp

    state = {}
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if "load" in command:
                data = np.load(command["load"])
                L, dtype = command["layers"], command["dtype"]
                weights = [data[f"W{l}"] for l in range(L)]
                biases = [data[f"b{l}"] for l in range(L)]
                state.update(
                    X=data["X"],
                    Y=data["Y"],
                    lr=command["lr"],
                    batch_size=command["batch_size"],
                    make=lambda: fastbp.Network.from_weights(weights, biases, dtype=dtype),
                )
                state["net"] = state["make"]()
                kernels = fastbp.get_backend() if hasattr(fastbp, "get_backend") else None
                result = {"fastbp": fastbp.__file__, "backend": str(getattr(kernels, "__name__", kernels))}
            elif "reset" in command:
                state["net"] = state["make"]()
                result = None
            else:
                rows, epochs = command["train"]
                costs = state["net"].train(
                    state["X"][:rows],
                    state["Y"][:rows],
                    epochs=epochs,
                    lr=state["lr"],
                    batch_size=state["batch_size"],
                )
                result = [float(c) for c in costs]
            answer = {"result": result}
        except Exception as error:
            answer = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
