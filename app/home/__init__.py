"""The dashboard's home page: counts, recent jobs and the getting-started path."""
