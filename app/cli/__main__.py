"""`python -m app.cli …` runs the `tuneboard` command."""

import sys

from app.cli import main

sys.exit(main())
