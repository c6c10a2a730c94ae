"""Tuneboard's settings: one pydantic-settings class, every field with a default and help text."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EngineSpin = Literal["auto", "on", "off"]
_SPIN_DIGITS = {"0": "off", "1": "on"}


class Settings(BaseSettings):
    """Everything an operator can set, read from the environment (prefix TUNEBOARD_) or passed to create_app."""

    model_config = SettingsConfigDict(env_prefix="TUNEBOARD_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(
        default=Path("data"),
        validation_alias=AliasChoices("TUNEBOARD_DATA_DIR", "DATA_DIR"),
        description="Directory holding the SQLite database, snapshots, adapters and cached base models.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TUNEBOARD_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL of the database; defaults to a SQLite file inside data_dir.",
    )
    host: str = Field(
        default="127.0.0.1",
        validation_alias=AliasChoices("TUNEBOARD_HOST", "HOST"),
        description="Interface the web server binds to. Anything but loopback requires a password.",
    )
    port: int = Field(
        default=8000, validation_alias=AliasChoices("TUNEBOARD_PORT", "PORT"), description="TCP port of the web server."
    )
    embedded_worker: bool = Field(
        default=True, description="Run one job worker inside the web server process (the single-machine default)."
    )
    worker_poll_seconds: float = Field(default=0.5, description="How often an idle worker looks for a queued job.")
    heartbeat_seconds: float = Field(default=2.0, description="How often a worker marks its running job as alive.")
    heartbeat_timeout_seconds: float = Field(
        default=30.0, description="A running job whose heartbeat is older than this is taken over by another worker."
    )
    api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("TUNEBOARD_API_KEY"),
        description="Bearer key accepted on /api and /v1 (keys created on the settings page are accepted too).",
    )
    password: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("TUNEBOARD_PASSWORD"),
        description="Dashboard password. Required when binding to anything but loopback.",
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Key that signs session cookies; generated and kept in data_dir when unset."
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("TUNEBOARD_OPENAI_API_KEY", "OPENAI_API_KEY"),
        description="Key for the OpenAI provider (can also be set on the settings page).",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TUNEBOARD_OPENAI_BASE_URL", "OPENAI_BASE_URL"),
        description="Base URL of an OpenAI-compatible API; empty means api.openai.com.",
    )
    openai_organization: str | None = Field(default=None, description="Optional OpenAI organisation id.")
    openai_project: str | None = Field(default=None, description="Optional OpenAI project id.")
    local_models: dict[str, Path] = Field(
        default_factory=dict,
        description='Extra local Hugging Face model directories, as JSON: {"name": "/path/to/model"}.',
    )
    default_base_model: str = Field(
        default="SmolLM2-135M-Instruct", description="Base model preselected for new local fine-tuning jobs."
    )
    maintenance: bool | None = Field(
        default=None,
        description="The maintenance switch: while it is off, cancelling jobs and deleting tuned models, checkpoints "
        "and files is refused everywhere (dashboard, /api, /v1); listing and reading never are. 1/true turns it on, "
        "0/false off, each time Tuneboard starts (the settings page and PUT /api/settings/maintenance can change it "
        "until the next start); unset keeps the value stored in the database, which is off on a new installation.",
    )
    sqlite_busy_timeout_ms: int = Field(
        default=30000, description="How long a SQLite write waits for another process's lock before giving up (ms)."
    )
    login_attempts_per_minute: int = Field(
        default=5, description="Failed login attempts allowed per client per minute."
    )
    log_level: str = Field(default="info", description="Logging level of the server and worker.")
    engine_spin: EngineSpin = Field(
        "auto",
        description="CPU threads of the local engine's chat decoding: auto = a second thread only while other "
        "processes leave the cores free; off (or 0) = one thread, OpenMP threads sleep at once (busy shared "
        "machines, training included); on (or 1) = always every thread (a dedicated machine). Takes effect "
        "before torch loads, so a change needs a restart.",
    )
    engine_quantize: bool = Field(
        True,
        description="true/1: the local engine serves chat from 4-bit weights (exact float32 rescoring of the top "
        "candidates, LoRA adapters applied unmerged in float32); false/0: float32 weights, slower, bit-for-bit the "
        "training maths. Applies to models loaded after it changes.",
    )
    engine_native: bool = Field(
        True,
        description="true/1: chat decoding runs the small steps between matmuls (norms, rotary embedding, "
        "attention, SwiGLU) in a C library built once with the machine's C compiler into DATA_DIR/kernels (about "
        "1.5x the tokens/s on 2 cores); without a compiler it falls back by itself. false/0: torch ops only.",
    )

    @field_validator("engine_spin", mode="before")
    @classmethod
    def _spin_from_digits(cls, value: Any) -> Any:
        """TUNEBOARD_ENGINE_SPIN=0/1 (the older spelling) means off/on."""
        return _SPIN_DIGITS.get(str(value).strip().lower(), value) if isinstance(value, str | int) else value

    @field_validator("maintenance", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        """TUNEBOARD_MAINTENANCE= (empty) means unset: the stored value stands."""
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the explicit one, or a SQLite file under data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tuneboard.db').resolve()}"

    @property
    def binds_loopback_only(self) -> bool:
        """True when the server listens on a loopback address only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def storage_path(self, *parts: str) -> Path:
        """A path inside data_dir (snapshots, adapters, models), its parent created."""
        path = self.data_dir.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
