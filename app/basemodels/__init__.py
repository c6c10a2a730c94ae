"""Base models added by the user: downloaded from the Hugging Face Hub, a local directory, or a GGUF file."""
