"""Moving off OpenAI: list the account's fine-tuned models, import their files, capture golden answers, compare."""
