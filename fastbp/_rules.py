"""The optimizers' rule codes, hyper-parameters and state slots: one table
that ``fastbp.optimizers``, the kernels' memory contract (``_layout``) and
both backends share (the rules themselves: ``fastbp.optimizers``)."""

from __future__ import annotations

SGD, ADAM, RPROP = 0, 1, 2  # the kernels' codes
# The hyper-parameters each rule takes, in the order of the kernels' ``hyper``.
HYPER = {
    SGD: ("lr", "momentum", "weight_decay", "nesterov"),
    ADAM: ("lr", "beta1", "beta2", "eps", "weight_decay"),
    RPROP: ("lr", "eta_minus", "eta_plus", "step_min", "step_max"),
}
# The state each rule keeps per parameter, one slot of len(params) values each.
SLOTS = {SGD: ("momentum_buffer",), ADAM: ("exp_avg", "exp_avg_sq"), RPROP: ("prev", "step_size")}


def state_slots(rule, hyper) -> int:
    """Slots of state per parameter: SGD without momentum needs none."""
    if rule == SGD and hyper[HYPER[SGD].index("momentum")] == 0:
        return 0
    return len(SLOTS[rule])
