"""HTTP routers, one module per area; each module exposes `router`. Order matters only for overlapping paths."""

ROUTER_MODULES = [
    "health",
    "docs",
    "auth",
    "home",
    "datasets",
    "examples",
    "api_datasets",
    "reports",
    "jobs",
    "api_jobs",
    "events",
    "playground",
    "models",
    "settings",
    "v1_files",
    "v1_jobs",
    "v1_models",
    "v1_chat",
]
