"""``python -m rnnlab.tui.labs NAME``: open one architecture lab."""

import sys

from ...errors import UserError
from . import LabScreenApp

if __name__ == "__main__":
    try:
        app = LabScreenApp(sys.argv[1] if len(sys.argv) > 1 else "")
    except UserError as exc:
        sys.exit(f"rnnlab: {exc}")
    app.run()
