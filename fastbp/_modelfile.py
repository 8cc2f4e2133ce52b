"""fastbp's model files: ``Network.save`` and ``fastbp.load``.

TEMPORARY placeholder: the format lands with issue 4 (robustness).
"""


def save(net, path):
    raise NotImplementedError("model files land with issue 4")


def load(path, *, backend=None):
    raise NotImplementedError("model files land with issue 4")
