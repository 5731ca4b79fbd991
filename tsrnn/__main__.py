"""``python -m tsrnn``: the same as the ``tsrnn`` command."""

import sys

from tsrnn.cli import main

sys.exit(main())
