"""The Add a model page and /api/base-models."""
