"""``python -m core.runs train|export ...`` (see core.runs.cli)."""

import sys

from core.runs.cli import main

if __name__ == "__main__":
    sys.exit(main())
