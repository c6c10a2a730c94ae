"""The local engine as a provider: training in a subprocess (`python -m app.engine.train_main SPEC.json`).

The parent side only: it writes SPEC.json, reads the JSON lines of app/engine/protocol.py from the child's
stdout and reports them through the job context; SIGTERM on cancel (the child exits within 5 s, else it is
killed). With several GPUs (or `train_processes` on a CPU) the child is N data-parallel ranks (local_ranks.py);
rank 0 reports, and a rank that dies ends the job as failed, in words. Torch is never imported here.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.engine.catalog import list_base_models
from app.engine.chat_types import ChatChunk, ChatParams, ModelRef
from app.engine.protocol import ERROR_PROCESS_LOST
from app.errors import Invalid
from app.providers.base import (
    DPO,
    DPO_HYPERPARAMETERS,
    HYPERPARAMETERS,
    SUPERVISED,
    JobContext,
    JobOutcome,
    Provider,
    ProviderError,
    RemoteCheckpoint,
    RemoteEvent,
    RemoteStatus,
    fine_tuned_model_name,
)
from app.providers.local_ranks import Layout, TrainerGroup, child_environ, plan_layout

if TYPE_CHECKING:
    from app.engine.inference import ChatEngine

ROOT = Path(__file__).resolve().parent.parent.parent
TERM_GRACE_SECONDS = 5.0
RANKS_EXIT_SECONDS = 60.0  # after rank 0 ends well, the others have only to leave the process group


def model_names(settings: Any) -> list[str]:
    """Names of the local base models, from the engine's catalog."""
    return [item.name for item in list_base_models(settings)]


class LocalProvider(Provider):
    """LoRA fine-tuning on this machine. Options: `command` (argv prefix of the trainer), `device`, `gpus` (GPU
    indexes; default Settings.worker_gpus), `processes` (ranks on a CPU; default Settings.train_processes), and for
    chat the app's `chat_engine` (app.engine.inference.ChatEngine)."""

    name = "local"
    hyperparameter_names = (*HYPERPARAMETERS, "lora_rank")
    methods = (SUPERVISED, DPO)
    dpo_hyperparameter_names = (*DPO_HYPERPARAMETERS, "sft_weight")

    def __init__(
        self,
        settings: Any,
        *,
        command: list[str] | None = None,
        device: str = "auto",
        gpus: list[int] | None = None,
        processes: int | None = None,
        chat_engine: ChatEngine | None = None,
        **options: Any,
    ):
        super().__init__(settings, **options)
        self.command = command or [sys.executable, "-m", "app.engine.train_main"]
        self.device = device
        self.gpus = gpus if gpus is not None else getattr(settings, "gpu_indexes", None)
        self.processes = processes or int(getattr(settings, "train_processes", 1) or 1)
        self.chat_engine = chat_engine

    def check_parameters(self, model: str, hyperparameters: dict | None, method_type: str = "supervised") -> dict:
        """Refuse unknown base models; otherwise the common checks plus lora_rank."""
        names = model_names(self.settings)
        if model not in names:
            raise Invalid(
                f"The local engine has no base model {model!r}; available: {', '.join(names)}.",
                code="model_not_available",
                param="model",
            )
        return super().check_parameters(model, hyperparameters, method_type)

    def list_base_models(self) -> list[str]:
        """The local base models."""
        return model_names(self.settings)

    # The local engine is driven by run(); these remote-style operations have nothing to talk to.
    def start(self, ctx: JobContext) -> str:
        """Not used: run() starts the trainer subprocess itself."""
        raise NotImplementedError("LocalProvider.run() starts the trainer")

    def poll(self, provider_job_id: str, after_event: str | None) -> tuple[RemoteStatus, list[RemoteEvent]]:
        """Not used: the trainer reports through its stdout."""
        raise NotImplementedError("LocalProvider.run() reads the trainer's output")

    def list_checkpoints(self, provider_job_id: str) -> list[RemoteCheckpoint]:
        """Local checkpoints are stored as they are reported; nothing to fetch."""
        return []

    def cancel(self, provider_job_id: str) -> None:
        """Cancel is a SIGTERM from run(), which watches the job's cancel flag."""

    def delete_model(self, model_id: str) -> None:
        """Local adapters are deleted by app.jobs.jobs.delete_tuned_model."""

    def stream_chat(self, model: ModelRef, messages: list[dict], params: ChatParams | None) -> Iterator[ChatChunk]:
        """Chat through the app's chat engine, which keeps the loaded models."""
        if self.chat_engine is None:
            raise ProviderError("This local provider was made without a chat engine.", code="engine_unavailable")
        return self.chat_engine.stream_chat(model, messages, params)

    # -- training ----------------------------------------------------------------------------------------------
    def _write_spec(self, ctx: JobContext, out: Path, device: str) -> Path:
        spec = ctx.spec
        names = (*self.hyperparameter_names, *(self.dpo_hyperparameter_names if spec.method_type == DPO else ()))
        hyper = {k: spec.hyperparameters.get(k, "auto") for k in names}
        body = {
            "job_id": spec.job_id,
            "base_model": spec.model,
            "fine_tuned_model": fine_tuned_model_name(spec.model, spec.suffix, spec.job_id),
            "train_file": spec.train_file,
            "validation_file": spec.validation_file,
            "output_dir": str(out),
            "hyperparameters": hyper,
            "seed": spec.seed,
            "resume_from": spec.resume_from,
            "data_dir": str(self.settings.data_dir.resolve()),
            "local_models": {k: str(v) for k, v in self.settings.local_models.items()},
            "device": device,
            "engine_spin": self.settings.engine_spin,
            "method": spec.method_type,
        }
        path = out / "spec.json"
        path.write_text(json.dumps(body, indent=2))
        return path

    def run(self, ctx: JobContext) -> None:
        """Train in a subprocess, relaying its reports; raise JobOutcome at the end, return None to hand back."""
        if ctx.cancel_requested():
            raise JobOutcome("cancelled")
        out = Path(ctx.spec.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        layout = self.layout()
        spec_path = self._write_spec(ctx, out, layout.device)
        try:
            group = TrainerGroup.start(self.command, spec_path, out, child_environ(ROOT), layout, ROOT)
        except OSError as exc:
            raise ProviderError(f"Could not start the local trainer: {exc}", code="engine_unavailable") from exc
        if group.size > 1:
            ctx.event(layout.describe())
        try:
            return self._relay(ctx, group, out)
        finally:
            group.close()  # kills what still runs (nothing, unless this thread was interrupted)

    def layout(self) -> Layout:
        """How the next job trains here: its device, its processes and the GPUs they see."""
        return plan_layout(self.device, self.gpus, self.processes)

    def _relay(self, ctx: JobContext, group: TrainerGroup, out: Path) -> None:
        lines: queue.Queue[bytes | None] = queue.Queue()
        child = group.lead
        stdout = child.stdout
        assert stdout is not None  # started with stdout=PIPE

        def read() -> None:
            for raw in stdout:
                lines.put(raw)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        state: dict[str, Any] = {"started": time.monotonic(), "result": None, "error": None}
        terminated_at: float | None = None
        lost_at: float | None = None
        while True:
            try:
                raw = lines.get(timeout=0.2)
            except queue.Empty:
                raw = b""
            if raw is None:
                break
            if raw:
                self._handle(ctx, raw, state)
            if ctx.should_stop() and terminated_at is None:
                terminated_at = time.monotonic()
                group.terminate()
            if group.size > 1 and lost_at is None and (lost := group.lost_rank()):
                state["lost"], lost_at = lost, time.monotonic()  # the others cannot step without it
                group.stop_others()
            stopped_at = terminated_at or lost_at
            if stopped_at is not None and time.monotonic() - stopped_at > TERM_GRACE_SECONDS:
                group.kill()
        failed = child.wait() != 0
        if failed and group.size > 1:
            group.stop_others()  # rank 0 is gone: the others would wait on it
        code = group.wait(timeout=TERM_GRACE_SECONDS if failed else RANKS_EXIT_SECONDS)
        if group.size > 1 and "lost" not in state and (lost := group.lost_rank()):
            state["lost"] = lost
        if terminated_at is not None:
            if ctx.cancel_requested():
                raise JobOutcome("cancelled")
            return None  # worker shutting down or job lost: the job is resumed later from its last checkpoint
        if code == 0 and state["result"]:
            result = state["result"]
            result_file = (
                ctx.relative(result.get("result_file")) if hasattr(ctx, "relative") else result.get("result_file")
            )
            raise JobOutcome(
                "succeeded",
                fine_tuned_model=state.get("model_name"),
                trained_tokens=result.get("trained_tokens"),
                result_files=[result_file] if result_file else [],
                model_path=result.get("adapter_path"),
            )
        error = state["error"] or {}
        if state.get("lost") and error.get("code") in (None, ERROR_PROCESS_LOST):
            # A rank died: that is the cause, not rank 0's report of losing its peer.
            raise ProviderError(state["lost"], code=ERROR_PROCESS_LOST)
        message = error.get("message") or self._stderr_tail(out) or f"The trainer exited with status {code}."
        raise ProviderError(message, code=error.get("code") or "training_failed")

    def _handle(self, ctx: JobContext, raw: bytes, state: dict[str, Any]) -> None:
        try:
            item = json.loads(raw)
        except ValueError:
            return  # a stray print from a library; not part of the protocol
        if not isinstance(item, dict):
            return
        kind = item.get("kind")
        if kind == "event":
            data = item.get("data")
            ctx.event(
                str(item.get("message", "")),
                level=item.get("level", "info"),
                type=item.get("type", "message"),
                data=data,
            )
            if isinstance(data, dict) and data.get("step") and data.get("total_steps"):
                self._estimate(ctx, state, int(data["step"]), int(data["total_steps"]))
        elif kind == "hyperparameters":
            ctx.update(hyperparameters=item.get("values") or {})
            state["total_steps"] = item.get("total_steps")
            state["first_step_at"] = time.monotonic()
        elif kind == "checkpoint":
            step = int(item.get("step", 0))
            name = fine_tuned_model_name(ctx.spec.model, ctx.spec.suffix, ctx.spec.job_id, step)
            ctx.checkpoint(step, name, item.get("metrics") or {}, item.get("path"))
        elif kind == "result":
            state["result"] = item
            state["model_name"] = fine_tuned_model_name(ctx.spec.model, ctx.spec.suffix, ctx.spec.job_id)
        elif kind == "error":
            state["error"] = item

    def _estimate(self, ctx: JobContext, state: dict[str, Any], step: int, total: int) -> None:
        # Estimated finish from the pace so far, written at most every few seconds to keep writes rare.
        now = time.monotonic()
        if now - state.get("estimated_at", 0.0) < 5 or step <= 0:
            return
        state["estimated_at"] = now
        first = state.get("first_step_at", state["started"])
        first_step = state.setdefault("first_seen_step", step)
        if step <= first_step:
            return
        per_step = (now - first) / (step - first_step + 1)
        ctx.update(estimated_finish=int(time.time() + per_step * (total - step)))

    @staticmethod
    def _stderr_tail(out: Path) -> str:
        try:
            text = (out / "stderr.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return text[-1][:500] if text else ""
