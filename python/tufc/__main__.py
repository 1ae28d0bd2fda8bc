"""``python -m tufc``: the same command line as the ``tufc`` script."""

import sys

from .cli import main

sys.exit(main())
