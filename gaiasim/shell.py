"""The interactive ``gaiasim query`` prompt.

Line editing and a history kept between sessions come from the standard library's ``readline`` (where the
platform has it); statements end with ``;`` outside strings, quoted names and comments, as DuckDB's own
parser (``duckdb.extract_statements``) sees them; dot commands list the tables and leave.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import duckdb

from gaiasim.validate import db
from pipeline.io import InputError

HISTORY_LINES = 1000  # statements kept in the history file
HELP = ("end statements with ';' (a ';' inside a string is no end); .tables lists the tables, .schema NAME its "
        "columns, .help this, .quit (or Ctrl-D) leaves; arrows recall earlier lines")


def history_path() -> Path:
    """Where the prompt's history is kept: ``$GAIASIM_QUERY_HISTORY``, else beside the results database's default
    place (``$XDG_DATA_HOME/gaiasim/query_history``, ``~/.local/share/gaiasim/query_history``)."""
    env = os.environ.get("GAIASIM_QUERY_HISTORY")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "gaiasim" / "query_history"


def tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """Every table and view a query can name (the run's, the truth's, the derived ones), with its kind."""
    return con.execute(
        "SELECT table_name, 'table' FROM duckdb_tables() WHERE NOT internal AND NOT temporary "
        "UNION ALL SELECT view_name, 'view' FROM duckdb_views() WHERE NOT internal AND NOT temporary "
        "ORDER BY 1").fetchall()


def complete(buffer: str) -> bool:
    """Whether ``buffer`` ends a statement: its last ';' is outside any string, quoted name or comment (an
    unterminated string or comment means more lines are coming)."""
    if not buffer.rstrip().endswith(";"):
        return False
    try:
        duckdb.extract_statements(buffer)
    except duckdb.ParserException as exc:
        return "unterminated" not in str(exc)
    return True


def _readline(path: Path) -> Callable[[], None]:
    """Turn on line editing with the history in ``path``; returns what saves the history at the end."""
    try:
        import readline
    except ImportError:  # a platform without readline: plain input(), still usable
        return lambda: None
    readline.set_history_length(HISTORY_LINES)
    try:
        readline.read_history_file(path)
    except (FileNotFoundError, PermissionError, OSError):
        pass

    def save() -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
        except OSError:  # a read-only home: the session still worked; nothing else to keep
            pass

    return save


def _dot(con: duckdb.DuckDBPyConnection, command: str, say: Callable[[str], None]) -> bool:
    """Run a dot command; False for '.quit'."""
    name, _, arg = command.partition(" ")
    if name in (".quit", ".exit"):
        return False
    if name == ".tables":
        say("\n".join(f"{table:<22} {kind}" for table, kind in tables(con)))
    elif name == ".schema" and arg.strip():
        try:
            quoted = '"' + arg.strip().replace('"', '""') + '"'
            rows = con.execute(f"DESCRIBE {quoted}").fetchall()
        except duckdb.Error as exc:
            say(f"error: {db.error_line(exc)}")
        else:
            say("\n".join(f"{row[0]:<22} {row[1]}" for row in rows))
    else:
        say(HELP)
    return True


def prompt(con: duckdb.DuckDBPyConnection, run_sql: Callable[[str], None], say: Callable[[str], None],
           error: Callable[[str], None], read: Callable[[str], str] | None = None) -> None:
    """The prompt loop: read lines (``read``, default ``input`` with readline's editing and history) until a
    statement ends, run it with ``run_sql``; errors are one line and the prompt goes on."""
    say(f"tables: {', '.join(t for t, _ in tables(con))}\n{HELP}")
    save = _readline(history_path()) if read is None else (lambda: None)
    read = read or input
    buffer = ""
    try:
        while True:
            try:
                line = read("gaiasim> " if not buffer else "   ...> ")
            except EOFError:
                break
            except KeyboardInterrupt:  # Ctrl-C drops the statement being typed, as a shell does
                buffer = ""
                say("")
                continue
            if not buffer and line.strip().startswith("."):
                if not _dot(con, line.strip(), say):
                    break
                continue
            buffer += line + "\n"
            if complete(buffer):
                try:
                    run_sql(buffer)
                except duckdb.Error as exc:
                    error(f"error: {db.error_line(exc)}")
                except InputError as exc:  # a refused statement: one line, the prompt goes on
                    error(f"error: {exc}")
                buffer = ""
    finally:
        save()
