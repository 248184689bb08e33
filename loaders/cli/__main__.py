"""`python -m loaders.cli`: the `luckygas` command."""

import sys

from loaders.cli import main

sys.exit(main())
