"""`python -m app.cli`: the `tuneboard` command."""

import sys

from app.cli import main

sys.exit(main())
