"""HTTP routes of this area: pages, `/api` and `/v1`; each module exposes `router`."""
