"""`tuneboard --help` and every sub-command's help read like a manual; errors read as plain sentences."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.cli import cli
from tests.cli.runner import tuneboard
from tests.conftest import free_port

COMMANDS = {
    "serve": "serve the dashboard",
    "migrate": "schema up to date",
    "worker": "worker process",
    "chat": "streamed",
    "files upload": "JSONL",
    "files list": "newest first",
    "files get": "details",
    "files download": "exactly as it was uploaded",
    "files delete": "maintenance is off",
    "jobs create": "fine-tuning job",
    "jobs list": "newest first",
    "jobs get": "hyperparameters",
    "jobs cancel": "maintenance is off",
    "jobs events": "event log",
    "jobs checkpoints": "checkpoints",
    "jobs watch": "Exit status",
    "models list": "base models",
    "models get": "one model",
    "models delete": "maintenance is off",
}


def test_the_group_help_lists_every_command_and_the_connection_options():
    result = tuneboard("--help")
    assert result.returncode == 0, result.stderr
    for word in (
        "serve",
        "migrate",
        "worker",
        "files",
        "jobs",
        "models",
        "chat",
        "--base-url",
        "TUNEBOARD_URL",
        "TUNEBOARD_API_KEY",
        "--openai",
        "OPENAI_API_KEY",
        "--json",
    ):
        assert word in result.stdout, word


@pytest.mark.parametrize("group", ["files", "jobs", "models"])
def test_a_group_without_a_command_shows_its_help(group):
    result = CliRunner().invoke(cli, [group], prog_name="tuneboard", env={"COLUMNS": "200"})
    assert "Usage: tuneboard " + group in result.output


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_has_a_manual_page(command):
    # In-process (the group's help above runs the real executable): twenty interpreter starts would be slow.
    result = CliRunner().invoke(cli, [*command.split(), "--help"], prog_name="tuneboard", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"Usage: tuneboard {command}" in result.stdout
    assert COMMANDS[command].lower() in " ".join(result.stdout.split()).lower()
    if command.split()[0] in ("files", "jobs", "models", "chat"):
        assert "--json" in result.stdout


def test_an_unreachable_server_is_a_plain_sentence():
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = tuneboard("--base-url", url, "--api-key", "k", "jobs", "list")
    assert result.returncode == 1
    assert f"Cannot reach {url}" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_key_names_the_variable_to_set():
    result = tuneboard("files", "list")
    assert result.returncode == 1 and "TUNEBOARD_API_KEY" in result.stderr
    result = tuneboard("--openai", "files", "list")
    assert result.returncode == 1 and "OPENAI_API_KEY" in result.stderr
