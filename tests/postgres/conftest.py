"""PostgreSQL versions of the shared fixtures: in this folder `settings` (and so `engine`, `session`, `app`,
`client`, `api`) point at a fresh migrated PostgreSQL database, with the tiny model as the default base model.

Every test gets its own database, cloned from one migrated template (CREATE DATABASE … TEMPLATE) so that a test
pays for a file copy, not for running the migrations again.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from app.config import Settings
from app.tables.migrate import upgrade
from tests.conftest import make_settings
from tests.support.jobs_fixtures import TINY, tiny_model  # noqa: F401

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items) -> None:
    """Every test in this folder needs PostgreSQL: mark it `postgres` so `-m "not postgres"` skips it."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.postgres)


def _admin(cluster):
    import psycopg

    return psycopg.connect(f"host=127.0.0.1 port={cluster.port} user=postgres dbname=postgres", autocommit=True)


@pytest.fixture(scope="session")
def pg_template(pg_cluster, tmp_path_factory) -> str:
    """The name of a migrated database that each test's database is cloned from."""
    url = pg_cluster.create_database()
    upgrade(make_settings(tmp_path_factory.mktemp("pg-template"), database_url=url))
    return url.rsplit("/", 1)[1]


def clone_database(cluster, template: str) -> str:
    """A new database copied from the template; its SQLAlchemy URL."""
    name = "tb_" + uuid.uuid4().hex[:12]
    with _admin(cluster) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return cluster.url(name)


@pytest.fixture
def pg_url(pg_cluster, pg_template) -> str:
    """The URL of this test's own migrated PostgreSQL database."""
    return clone_database(pg_cluster, pg_template)


@pytest.fixture
def settings(tmp_path: Path, pg_url: str, tiny_model: Path) -> Settings:
    """Test settings on PostgreSQL, the tiny model registered and preselected, fast worker timings."""
    return make_settings(
        tmp_path / "data",
        database_url=pg_url,
        local_models={TINY: tiny_model},
        default_base_model=TINY,
        heartbeat_seconds=0.2,
        worker_poll_seconds=0.05,
    )
