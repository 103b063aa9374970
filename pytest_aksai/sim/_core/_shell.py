"""The POSIX shell subset `sh -c` runs in a simulated container: simple commands with assignments and
redirections (`>`, `>>`, `<`, `2>`, `2>&1`, `>&2`), pipelines, `;` `&&` `||`, `for … in …; do …; done`,
`while`/`until`, `if … then … elif … else … fi`, quoting, `$VAR` `${VAR}` `$?` and `$(…)` with field
splitting of unquoted expansions. Commands run through the container runtime (`run_command`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

_OPERATORS = ("&&", "||", ";", "|", "\n")
_REDIRECTS = ("2>&1", "1>&2", ">&2", "&>", ">>", "2>>", "2>", ">", "<")
_DUPLICATIONS = ("2>&1", "1>&2", ">&2")
Word = list[tuple[str, str]]  # (kind, text): "lit" as written, "dq" expanded, "bare" expanded and split
Token = Word | str
Writer = Callable[[bytes], Awaitable[None]]


class ShellSyntaxError(Exception):
    pass


class ShellExit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class Process(Protocol):
    """What the shell needs of the process it runs in (the runtime's `_Proc`)."""

    @property
    def argv(self) -> list[str]: ...

    @property
    def env(self) -> dict[str, str]: ...

    @property
    def stdin(self) -> Any: ...

    @property
    def out(self) -> Writer: ...

    @property
    def err(self) -> Writer: ...

    @property
    def shell(self) -> Any: ...

    def path(self, name: str) -> str: ...

    def spawn(
        self, argv: list[str], env: dict[str, str], stdin: Any, out: Writer, err: Writer
    ) -> Process: ...

    async def run(self) -> int: ...

    def read_file(self, path: str) -> bytes | None: ...

    def write_file(self, path: str, data: bytes) -> None: ...

    def input_of(self, data: bytes) -> Any: ...


# ---- tokens --------------------------------------------------------------------------------------------
def _substitution_end(script: str, start: int) -> int:
    """Index just past the `)` closing the `$(` at `start`."""
    depth, i = 1, start + 1
    while i < len(script):
        if script[i] == "(":
            depth += 1
        elif script[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        elif script[i] == "'":
            i = script.find("'", i + 1)
            if i < 0:
                break
        i += 1
    raise ShellSyntaxError('Syntax error: end of file unexpected (expecting ")")')


def tokenize(script: str) -> list[Token]:
    tokens: list[Token] = []
    word: Word = []
    started = False
    i = 0

    def flush() -> None:
        nonlocal word, started
        if started:
            tokens.append(word)
        word, started = [], False

    while i < len(script):
        ch = script[i]
        if ch in " \t":
            flush()
            i += 1
        elif ch == "#" and not started:
            while i < len(script) and script[i] != "\n":
                i += 1
        elif ch == "'":
            end = script.find("'", i + 1)
            if end < 0:
                raise ShellSyntaxError("Syntax error: Unterminated quoted string")
            word.append(("lit", script[i + 1 : end]))
            started, i = True, end + 1
        elif ch == '"':
            j, buf = i + 1, ""
            while j < len(script) and script[j] != '"':
                if script[j] == "\\" and j + 1 < len(script) and script[j + 1] in '"\\$`':
                    buf += "\\$" if script[j + 1] == "$" else script[j + 1]
                    j += 2
                    continue
                if script.startswith("$(", j):
                    end = _substitution_end(script, j + 1)
                    buf += script[j:end]
                    j = end
                    continue
                buf += script[j]
                j += 1
            if j >= len(script):
                raise ShellSyntaxError("Syntax error: Unterminated quoted string")
            word.append(("dq", buf))
            started, i = True, j + 1
        elif ch == "\\" and i + 1 < len(script):
            if script[i + 1] != "\n":
                word.append(("lit", script[i + 1]))
                started = True
            i += 2
        elif script.startswith("$(", i):
            end = _substitution_end(script, i + 1)
            word.append(("bare", script[i:end]))
            started, i = True, end
        else:
            matched = next((op for op in (*_REDIRECTS, *_OPERATORS) if script.startswith(op, i)), None)
            if matched is not None and (not started or not matched[0].isdigit()):
                flush()
                tokens.append(matched)
                i += len(matched)
                continue
            j = i
            while j < len(script) and script[j] not in " \t'\"\\;&|<>\n" and not script.startswith("$(", j):
                j += 1
            word.append(("bare", script[i:j] if j > i else script[i]))
            started, i = True, max(j, i + 1)
    flush()
    return tokens


def _keyword(token: Token | None) -> str | None:
    if isinstance(token, list) and len(token) == 1 and token[0][0] == "bare":
        return token[0][1]
    return None


# ---- syntax tree --------------------------------------------------------------------------------------
@dataclass
class Simple:
    words: list[Word] = field(default_factory=list)
    redirects: list[tuple[str, Word | None]] = field(default_factory=list)


@dataclass
class ForLoop:
    variable: str
    items: list[Word]
    body: Program


@dataclass
class WhileLoop:
    condition: Program
    body: Program
    until: bool


@dataclass
class IfClause:
    branches: list[tuple[Program, Program]]
    otherwise: Program | None


Command = Simple | ForLoop | WhileLoop | IfClause
Program = list[tuple[list[Command], str]]  # pipelines, each with the operator after it
_RESERVED = frozenset({"then", "elif", "else", "fi", "do", "done"})


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def expect(self, keyword: str) -> None:
        if _keyword(self.peek()) != keyword:
            found = _keyword(self.peek()) or ("end of file" if self.peek() is None else str(self.peek()))
            raise ShellSyntaxError(f'Syntax error: "{found}" unexpected (expecting "{keyword}")')
        self.i += 1

    def program(self, stops: frozenset[str] = frozenset()) -> Program:
        program: Program = []
        while True:
            while self.peek() in (";", "\n"):
                self.i += 1
            token = self.peek()
            if token is None or _keyword(token) in stops:
                return program
            if isinstance(token, str) and token not in _REDIRECTS:
                raise ShellSyntaxError(f'Syntax error: "{token}" unexpected')
            pipeline = [self.command()]
            while self.peek() == "|":
                self.i += 1
                while self.peek() == "\n":
                    self.i += 1
                pipeline.append(self.command())
            operator = self.peek()
            if isinstance(operator, str) and operator in ("&&", "||", ";", "\n"):
                self.i += 1
                program.append((pipeline, operator))
                if operator in ("&&", "||"):
                    while self.peek() == "\n":
                        self.i += 1
            else:
                program.append((pipeline, ";"))
                if operator is not None and _keyword(operator) not in stops:
                    raise ShellSyntaxError(f'Syntax error: "{_keyword(operator) or operator}" unexpected')

    def command(self) -> Command:
        keyword = _keyword(self.peek())
        if keyword == "for":
            self.i += 1
            variable = _keyword(self.peek())
            if not variable or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable):
                raise ShellSyntaxError("Syntax error: Bad for loop variable")
            self.i += 1
            items: list[Word] = []
            if _keyword(self.peek()) == "in":
                self.i += 1
                while isinstance(self.peek(), list):
                    token = self.peek()
                    assert isinstance(token, list)
                    items.append(token)
                    self.i += 1
            while self.peek() in (";", "\n"):
                self.i += 1
            self.expect("do")
            body = self.program(frozenset({"done"}))
            self.expect("done")
            return ForLoop(variable, items, body)
        if keyword in ("while", "until"):
            self.i += 1
            condition = self.program(frozenset({"do"}))
            self.expect("do")
            body = self.program(frozenset({"done"}))
            self.expect("done")
            return WhileLoop(condition, body, keyword == "until")
        if keyword == "if":
            self.i += 1
            branches: list[tuple[Program, Program]] = []
            otherwise: Program | None = None
            while True:
                condition = self.program(frozenset({"then"}))
                self.expect("then")
                body = self.program(frozenset({"elif", "else", "fi"}))
                branches.append((condition, body))
                word = _keyword(self.peek())
                self.i += 1
                if word == "elif":
                    continue
                if word == "else":
                    otherwise = self.program(frozenset({"fi"}))
                    self.expect("fi")
                elif word != "fi":
                    raise ShellSyntaxError('Syntax error: end of file unexpected (expecting "fi")')
                return IfClause(branches, otherwise)
        if keyword in _RESERVED:
            raise ShellSyntaxError(f'Syntax error: "{keyword}" unexpected')
        simple = Simple()
        while True:
            token = self.peek()
            if isinstance(token, list):
                simple.words.append(token)
                self.i += 1
            elif token in _REDIRECTS:
                assert isinstance(token, str)
                self.i += 1
                if token in _DUPLICATIONS:
                    simple.redirects.append((token, None))
                    continue
                target = self.peek()
                if not isinstance(target, list):
                    raise ShellSyntaxError("Syntax error: redirection unexpected")
                simple.redirects.append((token, target))
                self.i += 1
            else:
                break
        if not simple.words and not simple.redirects:
            raise ShellSyntaxError(f'Syntax error: "{token}" unexpected')
        return simple


def parse(script: str) -> Program:
    return _Parser(tokenize(script)).program()


# ---- expansion ----------------------------------------------------------------------------------------
_PARAMETER = re.compile(r"\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*|\?|\$|#)")


async def _expand_text(proc: Process, text: str) -> str:
    out, i = "", 0
    while i < len(text):
        if text.startswith("$(", i):
            end = _substitution_end(text, i + 1)
            out += await _substitute(proc, text[i + 2 : end - 1])
            i = end
            continue
        match = _PARAMETER.match(text, i)
        if match is None:
            out += text[i]
            i += 1
            continue
        if match.group(0) == "\\$":
            out += "$"
        else:
            name = match.group(1) or match.group(2)
            if name == "?":
                out += str(proc.shell.last_status)
            elif name == "$":
                out += "1"
            elif name == "#":
                out += "0"
            else:
                out += proc.env.get(name, "")
        i = match.end()
    return out


async def _substitute(proc: Process, script: str) -> str:
    captured = bytearray()

    async def capture(chunk: bytes) -> None:
        captured.extend(chunk)

    child = proc.spawn(proc.argv, proc.env, proc.input_of(b""), capture, proc.err)
    try:
        status = await run_script(child, script)
    except ShellExit as done:
        status = done.code
    proc.shell.last_status = status
    return captured.decode(errors="replace").rstrip("\n")


async def expand(proc: Process, word: Word) -> list[str]:
    """The fields a word expands to: unquoted expansions split on blanks, quoted ones kept whole."""
    fields: list[str] = []
    current: str | None = None
    for kind, text in word:
        if kind == "lit":
            current = (current or "") + text
        elif kind == "dq":
            current = (current or "") + await _expand_text(proc, text)
        else:
            value = await _expand_text(proc, text)
            if "$" not in text:
                current = (current or "") + value
                continue
            pieces = value.split()
            if not pieces:
                continue
            if value[:1].isspace() and current is not None:
                fields.append(current)
                current = None
            for index, piece in enumerate(pieces):
                if index:
                    if current is not None:
                        fields.append(current)
                    current = piece
                else:
                    current = (current or "") + piece
            if value[-1:].isspace():
                fields.append(current or "")
                current = None
    if current is not None:
        fields.append(current)
    return fields


# ---- execution ----------------------------------------------------------------------------------------
async def run_script(proc: Process, script: str) -> int:
    try:
        program = parse(script)
    except ShellSyntaxError as exc:
        await proc.err(f"{proc.shell.name}: 1: {exc}\n".encode())
        return 2
    return await run_program(proc, program)


async def run_program(proc: Process, program: Program, stdin: Any = None, out: Writer | None = None) -> int:
    status = int(proc.shell.last_status)
    skip = False
    for pipeline, operator in program:
        if not skip:
            status = await _run_pipeline(proc, pipeline, stdin, out)
            proc.shell.last_status = status
        skip = (operator == "&&" and status != 0) or (operator == "||" and status == 0)
    return status


async def _run_pipeline(proc: Process, pipeline: list[Command], stdin: Any, out: Writer | None) -> int:
    data: bytes | None = None
    status = 0
    for index, command in enumerate(pipeline):
        last = index == len(pipeline) - 1
        buffer = bytearray()

        async def to_buffer(chunk: bytes, buffer: bytearray = buffer) -> None:
            buffer.extend(chunk)

        source = (stdin if stdin is not None else proc.stdin) if index == 0 else proc.input_of(data or b"")
        sink = (out or proc.out) if last else to_buffer
        status = await _run_command(proc, command, source, sink)
        data = bytes(buffer)
    return status


async def _run_command(proc: Process, command: Command, stdin: Any, out: Writer) -> int:
    if isinstance(command, Simple):
        return await _run_simple(proc, command, stdin, out)
    if isinstance(command, ForLoop):
        items = [f for word in command.items for f in await expand(proc, word)]
        status = 0
        for item in items:
            proc.env[command.variable] = item
            status = await run_program(proc, command.body, stdin, out)
            await asyncio.sleep(0)
        return status
    if isinstance(command, WhileLoop):
        status = 0
        while (await run_program(proc, command.condition, stdin, out) == 0) != command.until:
            status = await run_program(proc, command.body, stdin, out)
            await asyncio.sleep(0)  # an endless loop yields, and ends when the client goes away
        return status
    for condition, body in command.branches:
        if await run_program(proc, condition, stdin, out) == 0:
            return await run_program(proc, body, stdin, out)
    return await run_program(proc, command.otherwise, stdin, out) if command.otherwise is not None else 0


async def _run_simple(proc: Process, simple: Simple, stdin: Any, out: Writer) -> int:
    argv = [f for word in simple.words for f in await expand(proc, word)]
    env = proc.env  # builtins such as export change the shell's own variables
    if argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
        env = dict(proc.env)
    while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
        name, _, value = argv.pop(0).partition("=")
        env[name] = value
    if not argv and not simple.redirects:
        proc.env.update(env)
        return 0
    err = proc.err
    files: list[tuple[str, bytearray, bool]] = []
    for op, target in simple.redirects:
        expanded = await expand(proc, target) if target is not None else [""]
        path = proc.path(expanded[0] if expanded else "")
        if op == "2>&1":
            err = out
        elif op in ("1>&2", ">&2"):
            out = err
        elif op == "<":
            content = proc.read_file(path)
            if content is None:
                await proc.err(f"{proc.shell.name}: 1: cannot open {path}: No such file\n".encode())
                return 2
            stdin = proc.input_of(content)
        else:
            sink = bytearray()
            if path != "/dev/null":
                files.append((path, sink, op in (">>", "2>>")))

            async def into(chunk: bytes, sink: bytearray = sink) -> None:
                sink.extend(chunk)

            if op in (">", ">>"):
                out = into
            elif op in ("2>", "2>>"):
                err = into
            else:
                out = err = into
    status = 0
    if argv:
        status = int(await proc.spawn(argv, env, stdin, out, err).run())
    for path, sink, append in files:
        previous = (proc.read_file(path) or b"") if append else b""
        proc.write_file(path, previous + bytes(sink))
    return status
