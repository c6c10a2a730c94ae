"""Tuneboard's settings: one pydantic-settings class, every field with a default and help text."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# A list setting read from the environment as comma-separated values ("a.example, b.example").
CommaList = Annotated[list[str], NoDecode]

EngineSpin = Literal["auto", "on", "off"]
_SPIN_DIGITS = {"0": "off", "1": "on"}


class ChatServer(BaseModel):
    """An OpenAI-compatible chat server whose models the playground and evals can use (vLLM, llama.cpp's
    llama-server, Ollama, another Tuneboard): its models are listed as "<name>/<model>" (docs/serving.md)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="Prefix of its models' ids here.")
    base_url: str = Field(description="Its /v1 address, e.g. http://gpu-box:8000/v1.")
    api_key: SecretStr | None = Field(default=None, description="Its key, when it asks for one.")
    models: list[str] = Field(min_length=1, description="The model names it serves (vLLM: --lora-modules names).")


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
    worker_evals: bool = Field(
        default=True,
        description="Workers (the embedded one included) also run eval runs, on a second thread beside training, so "
        "checkpoints are evaluated while a job goes on. false/0: this process's worker leaves eval runs to others "
        "(e.g. keep them off a training host); with no worker running evals, runs stay queued.",
    )
    eval_remote_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Requests an eval run sends at once to a remote model (OpenAI or an OpenAI-compatible API); "
        "local models are decoded in batches instead (eval_batch_size).",
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
        default=None,
        description="Key that signs session cookies and CSRF tokens and encrypts stored secrets (the OpenAI key "
        "saved on the settings page); generated once and kept in data_dir/secret_key (mode 0600) when unset. Web "
        "and worker processes must share it (the same value here, or the same data_dir).",
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
    chat_servers: list[ChatServer] = Field(
        default_factory=list,
        description="OpenAI-compatible servers to chat with in the playground and evals, as JSON: "
        '[{"name": "vllm", "base_url": "http://gpu-box:8000/v1", "models": ["support-bot"]}] (docs/serving.md).',
    )
    openai_organization: str | None = Field(default=None, description="Optional OpenAI organisation id.")
    openai_project: str | None = Field(default=None, description="Optional OpenAI project id.")
    local_models: dict[str, Path] = Field(
        default_factory=dict,
        description='Extra local Hugging Face model directories, as JSON: {"name": "/path/to/model"}.',
    )
    hf_endpoint: str = Field(
        default="https://huggingface.co",
        validation_alias=AliasChoices("TUNEBOARD_HF_ENDPOINT", "HF_ENDPOINT"),
        description="The Hugging Face Hub (or a mirror) that base models are downloaded from on the Add a model page.",
    )
    hf_hub_offline: bool = Field(
        default=False,
        validation_alias=AliasChoices("TUNEBOARD_HF_HUB_OFFLINE", "HF_HUB_OFFLINE"),
        description="true/1: never reach the Hugging Face Hub; downloads are refused in words, and models are added "
        "from a local directory or a GGUF file only.",
    )
    fit_batch_size: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Batch size at which the model list says whether a base model fits this machine's memory (RAM "
        "and each GPU) for LoRA training; the page can ask for another.",
    )
    fit_sequence_length: int = Field(
        default=1024,
        ge=16,
        le=131072,
        description="Tokens per example at which the model list judges whether a base model fits for LoRA training.",
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
    # Size limits of uploads and examples (docs/security.md): what is over them is refused with a message that
    # names the line (imports) or the field (editor, API), never half-stored.
    max_upload_bytes: int = Field(
        default=4 * 1024**3,
        gt=0,
        description="Largest file an upload may carry (dataset import, /v1/files), in bytes; a request body "
        "larger than this (plus 1 MiB for the form around the file) is refused with 413.",
    )
    max_line_bytes: int = Field(
        default=2 * 1024**2,
        gt=0,
        description="Longest line of an imported JSONL or CSV file, in bytes; a longer line is rejected with its "
        "number (and the rest of the file imported).",
    )
    max_example_bytes: int = Field(
        default=1024**2,
        gt=0,
        description="Largest example, in bytes of its JSON as exported (messages, tools and other fields, "
        "non-ASCII characters escaped); a larger one is rejected by line in imports and refused by the editor "
        "and the API.",
    )
    max_message_chars: int = Field(
        default=256_000,
        gt=0,
        description="Longest text of one message (its content, or the text parts of a content list), in "
        "characters; a longer one is rejected by line in imports and refused by the editor and the API.",
    )
    upload_idle_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a request body (an upload above all) may send nothing before it is cut off with 408, "
        "so a stalled client cannot hold its connection forever.",
    )
    sqlite_busy_timeout_ms: int = Field(
        default=30000, description="How long a SQLite write waits for another process's lock before giving up (ms)."
    )
    login_attempts_per_minute: int = Field(
        default=5,
        description="Failed logins per client per minute answered without delay; beyond that each further attempt "
        "from that client waits longer (1 s, 2 s, 4 s … up to login_max_delay_seconds) before its password is "
        "checked. Attempts from one client are checked one at a time; the right password is never refused.",
    )
    login_global_attempts_per_minute: int = Field(
        default=60,
        description="Failed logins per minute from all clients together answered without delay; beyond that every "
        "attempt waits longer too (up to a third of login_max_delay_seconds), so many addresses cannot share out "
        "the guessing, yet the owner is only slowed, never locked out.",
    )
    login_max_delay_seconds: float = Field(
        default=30.0, description="The longest a login attempt from one client is delayed after repeated failures."
    )
    allowed_hosts: CommaList = Field(
        default_factory=list,
        description="Host names (comma-separated) the server answers to, besides the loopback names (127.0.0.1, "
        "localhost, [::1]) and the host it is bound to; any other Host header is refused with 400, which defeats "
        "DNS rebinding. Add the name people type in the browser (e.g. tuneboard.example.com). '*' answers any "
        "host (not recommended).",
    )
    trusted_proxies: CommaList = Field(
        default_factory=list,
        description="Addresses or networks (CIDR, comma-separated) of reverse proxies in front of Tuneboard. Only "
        "requests from these have their X-Forwarded-For (the client address, for the login throttle) and "
        "X-Forwarded-Proto (https: the cookies get Secure, the same-origin check expects https) believed. "
        "Empty: forwarded headers are ignored.",
    )
    log_level: str = Field(default="info", description="Logging level of the server and worker.")
    engine_spin: EngineSpin = Field(
        "auto",
        description="CPU threads of the local engine's chat decoding: auto = a second thread only while other "
        "processes leave the cores free; off (or 0) = one thread, OpenMP threads sleep at once (busy shared "
        "machines, training included); on (or 1) = always every thread (a dedicated machine). Takes effect "
        "before torch loads, so a change needs a restart.",
    )
    preload_tuned_models: bool = Field(
        True,
        description="Load the tuned model of a local job that just succeeded into the server's chat engine, so its "
        "first chat starts at once: the newest one only, never while a local training job is running.",
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

    worker_gpus: str = Field(
        "all",
        description="GPUs a worker that trains on GPUs (`tuneboard worker --gpu`, the embedded worker) uses: all = "
        "every visible GPU, or their indexes as this process sees them, comma-separated (0,2; `--gpus 0,2`). With "
        "more than one, each local job trains data-parallel, one process per GPU (NCCL), the same global batch "
        "shared out between them.",
    )
    train_processes: int = Field(
        1,
        ge=1,
        le=64,
        description="Training processes of a local job that trains on the CPU (data-parallel over gloo; `tuneboard "
        "worker --processes N`). 1 = one process (the default: on one CPU more processes only share out the same "
        "cores); more is for testing the multi-GPU path, or a CPU host with many cores per NUMA node.",
    )

    eval_batch_size: int = Field(
        16,
        ge=1,
        le=256,
        description="How many conversations the local engine decodes at once in an evaluation run (one step "
        "multiplies every conversation's token by each weight in one read). On CPU the cost per conversation stops "
        "falling past 4 (bench/README.md); 16 lets each free core take a group of 8. Each conversation keeps its own "
        "KV cache, so larger batches use more memory.",
    )

    @field_validator("engine_spin", mode="before")
    @classmethod
    def _spin_from_digits(cls, value: Any) -> Any:
        """TUNEBOARD_ENGINE_SPIN=0/1 (the older spelling) means off/on."""
        return _SPIN_DIGITS.get(str(value).strip().lower(), value) if isinstance(value, str | int) else value

    @field_validator("worker_gpus", mode="before")
    @classmethod
    def _gpu_list(cls, value: Any) -> Any:
        """'all' (or empty), or GPU indexes separated by commas; anything else is refused at start."""
        text = ",".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts or parts == ["all"]:
            return "all"
        if not all(part.isdigit() for part in parts):
            raise ValueError(f"{value!r}: give 'all' or GPU indexes such as 0,2")
        return ",".join(parts)

    @property
    def gpu_indexes(self) -> list[int] | None:
        """The GPU indexes worker_gpus names; None for every visible GPU."""
        return None if self.worker_gpus == "all" else [int(part) for part in self.worker_gpus.split(",")]

    @field_validator("maintenance", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        """TUNEBOARD_MAINTENANCE= (empty) means unset: the stored value stands."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("allowed_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network (e.g. 10.0.0.0/8)") from None
        return value

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
