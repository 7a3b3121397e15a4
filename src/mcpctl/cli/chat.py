"""`mcpctl chat AGENT [--personality P] [--thread ID] [-m TEXT]` (docs/agents.md, "Chat").

With ``-m`` one message is sent and the answer streams to stdout as the agent writes it; the
thread's id goes to stderr as ``thread: ID`` once the turn ends (before the error line of a
turn that failed), so a script can go on with
``--thread``; each tool call is one ``tool: ...`` line on stderr. Without ``-m``, a REPL:
streamed answers, line editing and history (readline, when stdin is a terminal), multi-line
input (end a line with ``\\`` to go on, or put the text between two lines of ``\"\"\"``), and
the commands ``/new``, ``/thread [ID]``, ``/personality [NAME]``, ``/help``, ``/exit`` (or
Ctrl-D). Ctrl-C stops an answer being written (the REPL goes on) or clears the line.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click

from mcpctl.cli.completion_names import complete_agent_names
from mcpctl.cli.session import client_for
from mcpctl.errors import AppError, InvalidInput

if TYPE_CHECKING:
    from mcpctl.client.http import McpdClient

TOOL_LINE = 200
PROMPT = "you> "
MORE = "...> "
BLOCK = '"""'
HELP = (
    "/new: a new thread · /thread [ID]: show or switch the thread · /personality [NAME]: show or "
    "switch the personality ('-': the agent's default) · /exit or Ctrl-D: leave. "
    'End a line with \\ to go on, or write between two lines of """.'
)
HISTORY_LENGTH = 1000


def _one_line(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


@dataclass
class Conversation:
    """Where the next message goes: the agent, its personality and the current thread."""

    client: McpdClient
    agent: str
    personality: str | None = None
    thread: str | None = None
    _calls: dict[str, str] = field(default_factory=dict)

    def send(self, text: str) -> None:
        """Send ``text``; the answer streams to stdout, tool calls to stderr.

        Raises:
            AppError: mcpd refused the message, or the turn failed (after what was written).
        """
        from mcpctl.client.chat import chat_events, error_of

        body: dict[str, Any] = {"message": text}
        if self.thread:
            body["thread"] = self.thread
        if self.personality:
            body["personality"] = self.personality
        written = False
        try:
            for name, data in chat_events(self.client, self.agent, body):
                if name == "thread":
                    self.thread = data["id"]
                elif name == "delta":
                    click.echo(data["text"], nl=False)
                    sys.stdout.flush()
                    written = True
                elif name == "tool_call":
                    self._calls[data["id"]] = f"{data['name']}({data['arguments']})"
                elif name == "tool_result":
                    self._tool_line(data, written)
                    written = False
                elif name == "error":
                    raise error_of(data)
        finally:
            if written:
                click.echo()

    def _tool_line(self, data: dict[str, Any], written: bool) -> None:
        if written:
            click.echo()
        call = self._calls.pop(data["id"], data["name"])
        line = f"tool: {call} -> {' '.join(data['content'].split())}"
        click.echo(_one_line(line, TOOL_LINE), err=True)


@click.command()
@click.argument("agent", shell_complete=complete_agent_names)
@click.option("-p", "--personality", help="A personality of the agent (default: its default).")
@click.option("--thread", "thread_id", metavar="ID", help="Go on in this thread of yours.")
@click.option(
    "-m", "--message", help="Send this one message, print the answer and exit ('-': stdin)."
)
@click.pass_context
def chat(
    ctx: click.Context,
    agent: str,
    personality: str | None,
    thread_id: str | None,
    message: str | None,
) -> None:
    """Chat with an agent: `-m TEXT` answers once; without it, an interactive session.

    \b
    The answer goes to stdout; tool calls (`tool: ...`) and, with -m, the thread's id
    (`thread: ID`, to go on with --thread) go to stderr. In a session: /new, /thread [ID],
    /personality [NAME], /exit (or Ctrl-D); end a line with \\ to go on, or write between
    two lines of \"\"\".
    """
    conversation = Conversation(client_for(ctx), agent, personality, thread_id)
    if message is None:
        _repl(conversation)
        return
    text = sys.stdin.read() if message == "-" else message
    if not text.strip():
        raise InvalidInput("-m: the message is empty")
    try:
        conversation.send(text)
    finally:
        if conversation.thread:
            click.echo(f"thread: {conversation.thread}", err=True)


# -- the REPL --------------------------------------------------------------------------------


def _history_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mcpctl" / "chat_history"


def _line_editing() -> Path | None:
    """readline with the history of earlier sessions, when stdin is a terminal."""
    if not sys.stdin.isatty():
        return None
    try:
        import readline
    except ImportError:  # not on every platform
        return None
    path = _history_file()
    with contextlib.suppress(OSError):  # no history yet
        readline.read_history_file(path)
    readline.set_history_length(HISTORY_LENGTH)
    return path


def _save_history(path: Path | None) -> None:
    if path is None:
        return
    import readline

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        readline.write_history_file(path)
    except OSError as exc:
        click.echo(f"warning: chat history not saved to {path}: {exc}", err=True)


def read_message(interactive: bool) -> str:
    """One message: a line, lines joined by a trailing ``\\``, or a ``\"\"\"`` block.

    Raises:
        EOFError: end of input.
    """
    first = input(PROMPT if interactive else "")
    more = MORE if interactive else ""
    if first.strip() == BLOCK:
        lines = []
        while (line := input(more)).strip() != BLOCK:
            lines.append(line)
        return "\n".join(lines)
    lines = [first]
    while lines[-1].endswith("\\"):
        lines[-1] = lines[-1][:-1]
        lines.append(input(more))
    return "\n".join(lines)


def _repl(conversation: Conversation) -> None:
    interactive = sys.stdin.isatty()
    history = _line_editing()
    if interactive:
        click.echo(f"Chatting with {conversation.agent}. {HELP}", err=True)
    try:
        while True:
            try:
                text = read_message(interactive)
            except EOFError:
                break
            except KeyboardInterrupt:
                click.echo(err=True)
                continue
            if text.startswith("/"):
                if _command(conversation, text):
                    break
                continue
            if text.strip():
                _turn(conversation, text)
    finally:
        if interactive:
            click.echo(err=True)
        _save_history(history)


def _turn(conversation: Conversation, text: str) -> None:
    try:
        conversation.send(text)
    except KeyboardInterrupt:
        click.echo("(stopped)", err=True)
    except AppError as exc:
        click.echo(f"error: {exc}", err=True)


def _command(conversation: Conversation, text: str) -> bool:
    """Carry out a /command; True to leave."""
    word, _, argument = text.strip().partition(" ")
    argument = argument.strip()
    if word in ("/exit", "/quit"):
        return True
    if word == "/new":
        conversation.thread = None
        click.echo("(a new thread starts with your next message)", err=True)
    elif word == "/thread" and argument:
        _switch_thread(conversation, argument)
    elif word == "/thread":
        click.echo(f"thread: {conversation.thread or '(new)'}", err=True)
    elif word == "/personality" and argument:
        conversation.personality = None if argument == "-" else argument
        click.echo(f"personality: {conversation.personality or '(the default)'}", err=True)
    elif word == "/personality":
        click.echo(f"personality: {conversation.personality or '(the default)'}", err=True)
    else:
        click.echo(HELP, err=True)
    return False


def _switch_thread(conversation: Conversation, thread_id: str) -> None:
    try:
        thread = conversation.client.request("GET", f"/api/v1/threads/{quote(thread_id, safe='')}")
    except AppError as exc:
        click.echo(f"error: {exc}", err=True)
        return
    if thread["agent"] != conversation.agent:
        click.echo(f"error: thread {thread_id} is with agent {thread['agent']}", err=True)
        return
    conversation.thread = thread_id
    count = len(thread["messages"])
    click.echo(f"thread: {thread_id} ({json.dumps(thread['title'])}, {count} messages)", err=True)
