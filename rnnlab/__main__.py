"""``python -m rnnlab``: the same as the ``rnnlab`` command."""

import sys

from .console import main

sys.exit(main())
