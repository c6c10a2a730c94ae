"""Datasets: examples, import and export, the editor, validation and the report."""
