"""``python -m tl_engine``: see :mod:`tl_engine.cli`."""

import sys

from .cli import main

sys.exit(main())
