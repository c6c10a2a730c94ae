"""The playground: streaming chat with base, tuned and checkpoint models, side by side."""
