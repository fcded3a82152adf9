"""``python -m app.ops``: the ``vidgate`` command without its console script.

A module of its own, so ``app.ops.cli`` is imported once under its real name
(``-m app.ops.cli`` would load it twice, and commands contributed by other
packages would raise a ``UserError`` class the ``__main__`` copy does not catch).
"""

import sys

from app.ops.cli import main

sys.exit(main())
