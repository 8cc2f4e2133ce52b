# The kernels of _kernels.pyx, compiled by setup.py for x86-64-v3 (see the
# "One source, several instruction sets" note there); fastbp.backends picks the
# best copy the CPU runs.  Nothing else belongs in this file.
include "_kernels.pyx"
