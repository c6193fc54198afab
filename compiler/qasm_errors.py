"""Turn Qiskit's OpenQASM parser exceptions into :class:`QasmValidationError` (FR-003).

What the parsers raise (qiskit 2.6, qiskit-qasm3-import 0.6, openqasm3 1.0):

* ``qiskit.qasm2.QASM2ParseError``: ``.message`` is ``"<input>:LINE,COL: text"``
  (``str(exc)`` wraps it in quotes, so read ``.message``). LINE is 1-based,
  COL 0-based.
* ``qiskit.qasm3.QASM3ImporterError`` (semantic errors, from
  ``qiskit_qasm3_import.ConversionError``): ``"LINE,COL: text"``, COL 0-based.
* ``openqasm3.parser.QASM3ParsingError`` (syntax errors): for lexer errors the
  message is ``"L{line}:C{col}: text"``; for parser errors the message is
  *empty* and the position lives on the chained ANTLR exception
  (``exc.__cause__.args[0].offendingToken``).
* Anything else (``IndexError("index out of range")`` for ``q[5]`` on a
  2-qubit register in QASM 3, ...): no position is available.
"""

from __future__ import annotations

import re

from qb2.compiler.errors import QasmValidationError

_QASM2_POSITION = re.compile(r"^<input>:(\d+),(\d+):\s*(.*)$", re.DOTALL)
_QASM3_IMPORTER_POSITION = re.compile(r"^(\d+),(\d+):\s*(.*)$", re.DOTALL)
_ANTLR_LEXER_POSITION = re.compile(r"^L(\d+):C(\d+):\s*(.*)$", re.DOTALL)


def _text_of(exc: BaseException) -> str:
    """The bare message of ``exc`` (QiskitError's ``str`` adds quotes; ``.message`` does not)."""
    message = getattr(exc, "message", None)
    if isinstance(message, str):
        return message.strip()
    return str(exc).strip()


def _positioned(pattern: re.Pattern[str], text: str) -> QasmValidationError | None:
    match = pattern.match(text)
    if match is None:
        return None
    line, column, message = int(match.group(1)), int(match.group(2)), match.group(3).strip()
    return QasmValidationError(message or "syntax error", line=line, column=column + 1)


def _from_antlr_recognition(exc: BaseException) -> QasmValidationError | None:
    """Read the offending token of an ANTLR ``RecognitionException`` chained under ``exc``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for candidate in (current, *current.args):
            token = getattr(candidate, "offendingToken", None)
            if token is not None and getattr(token, "line", None) is not None:
                return QasmValidationError(
                    _describe_token(candidate, token),
                    line=int(token.line),
                    column=int(token.column) + 1,
                )
        current = current.__cause__ or current.__context__
    return None


def _describe_token(recognition: object, token: object) -> str:
    text = getattr(token, "text", None)
    found = "end of input" if text in (None, "<EOF>") else repr(text)
    expected = ""
    try:  # ANTLR can name the expected tokens for mismatches; best effort only.
        recognizer = recognition.recognizer  # type: ignore[attr-defined]
        tokens = recognition.getExpectedTokens()  # type: ignore[attr-defined]
        rendered = tokens.toString(recognizer.literalNames, recognizer.symbolicNames)
        if rendered and len(rendered) <= 80:
            expected = f", expected {rendered}"
    except Exception:
        expected = ""
    return f"syntax error: unexpected {found}{expected}"


def qasm2_error(exc: BaseException) -> QasmValidationError:
    """Translate an exception raised by ``qiskit.qasm2.loads``.

    Returns:
        A :class:`QasmValidationError` with 1-based line/column when the parser
        gave a position, else with ``line=None``.
    """
    text = _text_of(exc)
    return _positioned(_QASM2_POSITION, text) or QasmValidationError(
        f"invalid OpenQASM 2 program: {text or type(exc).__name__}"
    )


def qasm3_error(exc: BaseException) -> QasmValidationError:
    """Translate an exception raised by ``qiskit.qasm3.loads``.

    Returns:
        A :class:`QasmValidationError` with 1-based line/column when the
        importer or the ANTLR parser gave a position, else with ``line=None``.
    """
    text = _text_of(exc)
    found = (
        _positioned(_QASM3_IMPORTER_POSITION, text)
        or _positioned(_ANTLR_LEXER_POSITION, text)
        or _from_antlr_recognition(exc)
    )
    if found is not None:
        return found
    return QasmValidationError(f"invalid OpenQASM 3 program: {text or type(exc).__name__}")
