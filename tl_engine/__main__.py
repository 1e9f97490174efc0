"""``python -m tl_engine``: see :mod:`tl_engine.cli.main`."""

import sys

from .cli.main import main

# Guarded: worker processes (spawn/forkserver, `sweep --backend process`) import the main module again.
if __name__ == "__main__":
    sys.exit(main())
