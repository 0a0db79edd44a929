"""``python -m nexlab``: the ``nexlab`` command."""

import sys

from nexlab.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
