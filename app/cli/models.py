"""`tuneboard models` (list, get, delete) and `tuneboard chat MODEL` (a streamed conversation in the terminal)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from app.cli.connection import api, confirm
from app.cli.output import JsonFlag, YesFlag, field, listing, out, print_json, show, when

models = typer.Typer(
    name="models",
    help="Models you can fine-tune or chat with: base models, tuned models and their checkpoints.",
    no_args_is_help=True,
)
COLUMNS = [("ID", field("id")), ("Owned by", field("owned_by")), ("Created", lambda m: when(m.get("created")))]
ModelId = Annotated[str, typer.Argument(help="The model id, as `models list` shows it.")]


@models.command("list")
def list_models(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the models: base models first, then tuned ones (owned by "user")."""
    with api(ctx) as client:
        items = list(client.models.list())
    listing(items, as_json, COLUMNS, "No models.")


@models.command()
def get(ctx: typer.Context, model: ModelId, as_json: JsonFlag = False) -> None:
    """Show one model."""
    with api(ctx) as client:
        show(client.models.retrieve(model), as_json, COLUMNS)


@models.command()
def delete(ctx: typer.Context, model: ModelId, yes: YesFlag = False, as_json: JsonFlag = False) -> None:
    """Delete a tuned model (its adapter; base models cannot be deleted). Refused while maintenance is off."""
    confirm(f"Delete model {model}?", yes)
    with api(ctx) as client:
        deleted = client.models.delete(model)
    if as_json:
        print_json(deleted)
    else:
        out.print(f"Deleted model {deleted.id}.", markup=False)


def chat(
    ctx: typer.Context,
    model: ModelId,
    system: Annotated[str | None, typer.Option("--system", "-s", help="A system message that opens the chat.")] = None,
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Send this one message, print the reply and exit.")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Longest reply, in tokens.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature (0 = most likely words).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Chat with a model, the reply streamed as it is written.

    Without --message it is a conversation: type a message, Enter sends it; Ctrl-D or /exit ends it. With
    --message it answers once and exits (with --json it prints the whole chat completion object).
    """
    messages: list[Any] = [{"role": "system", "content": system}] if system else []
    options: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
    options = {k: v for k, v in options.items() if v is not None}
    with api(ctx) as client:
        if message is not None:
            messages.append({"role": "user", "content": message})
            if as_json:
                print_json(client.chat.completions.create(model=model, messages=messages, **options))
            else:
                _stream_reply(client, model, messages, options)
            return
        out.print(f"Chatting with [bold]{model}[/]. Ctrl-D or /exit ends the chat.", style="dim")
        while True:
            try:
                text = input("you> ")
            except (EOFError, KeyboardInterrupt):
                out.print()
                return
            if text.strip() in ("/exit", "/quit"):
                return
            if not text.strip():
                continue
            messages.append({"role": "user", "content": text})
            messages.append({"role": "assistant", "content": _stream_reply(client, model, messages, options)})


def _stream_reply(client: Any, model: str, messages: list[dict[str, str]], options: dict[str, Any]) -> str:
    """Print the reply as its pieces arrive; return it whole."""
    pieces: list[str] = []
    for chunk in client.chat.completions.create(model=model, messages=messages, stream=True, **options):
        piece = chunk.choices[0].delta.content if chunk.choices else None
        if piece:
            pieces.append(piece)
            print(piece, end="", flush=True)
    print(flush=True)
    return "".join(pieces)
