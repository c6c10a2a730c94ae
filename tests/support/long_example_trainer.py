"""The real trainer (`python -m app.engine.train_main SPEC.json`) with a longer example limit, for the tiny model.

The tiny model's 400-token vocabulary spends about 1.4 characters a token, so the shared tool-calling dataset's
tool definitions alone pass MAX_EXAMPLE_TOKENS there (SmolLM2's tokenizer needs about 1000 tokens for them), and
cutting at the limit would leave nothing to train.
"""

from __future__ import annotations

import sys

from app.engine import data
from app.engine.train_main import main

LONG_EXAMPLE_TRAINER = [sys.executable, "-m", "tests.support.long_example_trainer"]

if __name__ == "__main__":
    data.MAX_EXAMPLE_TOKENS = 8192
    sys.exit(main())
