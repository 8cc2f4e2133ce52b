"""``python -m fastbp``: the worked example of backpropagation
(``fastbp._worked_example``), or with a command, the ``fastbp`` tool (``fastbp.cli``)."""

from .cli import module_main as main

if __name__ == "__main__":
    raise SystemExit(main())
