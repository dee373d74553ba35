"""Reading import files as a stream of rows, one format at a time.

Every parser takes a binary file object and yields `(row_number, row)` where `row` is a dict of the
file's own keys (not yet mapped or checked) or a `RowProblem` for a row that could not be read (bad
JSON, bytes that are not UTF-8). Parsers never read the whole file: a 100k-row upload is read line
by line (JSON arrays value by value), so memory stays flat in the file size.

Row numbers are what a person sees in the file:
- .jsonl, .csv, .tsv, .txt: the line number (for CSV the line a record starts on, so the header is
  row 1 and the first data row is row 2, as a spreadsheet counts them; for paragraphs the line the
  paragraph starts on);
- .json: the position of the item in the array (1 = first item); syntax errors also name the line.
"""

import codecs
import csv
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import orjson
from django.conf import settings

from synthlab.errors import ValidationFailed

FORMATS = ("jsonl", "json", "csv", "tsv", "txt")
EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "txt",
}
TXT_MODES = ("lines", "paragraphs")
# Columns of a CSV/TSV file that hold JSON when their cell starts with [ or {.
JSON_COLUMNS = frozenset({"messages", "candidates", "metadata", "labels", "spans"})

_CHUNK = 1 << 16
# csv refuses fields over 128 KiB by default; the item size limit is checked later with a clear
# message, so the csv module only needs to stop runaway fields.
csv.field_size_limit(64 * 1024 * 1024)


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row that could not be read at all; `field` is None when the whole row is at fault."""

    field: str | None
    message: str


def format_detect(*, filename: str, fmt: str | None = None) -> str:
    """The format named by `fmt`, else by the file's extension. Raises ValidationFailed."""
    if fmt:
        fmt = fmt.lower().lstrip(".")
        if fmt in ("ndjson",):
            fmt = "jsonl"
        if fmt not in FORMATS:
            raise ValidationFailed(
                f"Unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}.",
                details=[
                    {"row": None, "field": "format", "message": f"Choose one of: {', '.join(FORMATS)}."}
                ],
            )
        return fmt
    ext = os.path.splitext(filename or "")[1].lower()
    if ext == ".pdf":
        raise ValidationFailed(
            "PDF import comes with documents (a later release); for now save the PDF as .txt and import "
            "that, one item per paragraph.",
            code="unsupported_format",
            details=[{"row": None, "field": "file", "message": "PDF files cannot be imported yet."}],
        )
    if ext not in EXTENSIONS:
        raise ValidationFailed(
            f"Cannot tell the format of {filename!r}; use a .jsonl, .json, .csv, .tsv or .txt file "
            "(or name the format).",
            code="unsupported_format",
            details=[
                {"row": None, "field": "file", "message": "Use a .jsonl, .json, .csv, .tsv or .txt file."}
            ],
        )
    return EXTENSIONS[ext]


def upload_size_check(*, size: int | None) -> None:
    limit = settings.MAX_UPLOAD_BYTES
    if size is not None and size > limit:
        raise ValidationFailed(
            f"The file is {size / 1048576:.1f} MB; uploads are limited to {limit / 1048576:.0f} MB. "
            "Split it into smaller files.",
            code="too_large",
            details=[{"row": None, "field": "file", "message": f"Over the {limit // 1048576} MB limit."}],
        )


def rows_read(
    fileobj,
    *,
    fmt: str,
    txt_mode: str = "lines",
    header: bool = True,
) -> Iterator[tuple[int, dict | RowProblem]]:
    """The rows of a binary file object in the given format (see the module docstring)."""
    if fmt == "jsonl":
        return jsonl_rows(fileobj)
    if fmt == "json":
        return json_rows(fileobj)
    if fmt in ("csv", "tsv"):
        return csv_rows(fileobj, delimiter="\t" if fmt == "tsv" else ",", header=header)
    if fmt == "txt":
        if txt_mode not in TXT_MODES:
            raise ValidationFailed(
                "For .txt files choose one item per line or per paragraph.",
                details=[{"row": None, "field": "txt_mode", "message": "Choose lines or paragraphs."}],
            )
        return txt_rows(fileobj, paragraphs=txt_mode == "paragraphs")
    raise ValidationFailed(f"Unknown format {fmt!r}.")


NOT_UTF8 = "This line is not UTF-8 text; save the file as UTF-8 and import it again."


def _decoded_lines(fileobj) -> Iterator[tuple[int, str | None]]:
    """(line number, text) per physical line, the text None where the bytes are not UTF-8."""
    for number, raw in enumerate(fileobj, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[3:]
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError:
            yield number, None


def jsonl_rows(fileobj) -> Iterator[tuple[int, dict | RowProblem]]:
    loads = orjson.loads
    for number, raw in enumerate(fileobj, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[3:]
        try:
            row = loads(raw)
        except ValueError as exc:
            if not raw.strip():
                continue
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                yield number, RowProblem("encoding", NOT_UTF8)
                continue
            yield number, RowProblem("json", f"Not valid JSON: {exc.msg} (column {exc.colno}).")
            continue
        if type(row) is not dict:
            yield number, RowProblem("item", 'Each line must be a JSON object such as {"text": "..."}.')
            continue
        yield number, row


def txt_rows(fileobj, *, paragraphs: bool) -> Iterator[tuple[int, dict | RowProblem]]:
    if not paragraphs:
        for number, line in _decoded_lines(fileobj):
            if line is None:
                yield number, RowProblem("encoding", NOT_UTF8)
            elif line.strip():
                yield number, {"text": line.strip()}
        return
    start, lines, bad = None, [], False
    for number, line in _decoded_lines(fileobj):
        if line is not None and not line.strip():
            if start is not None:
                yield start, RowProblem("encoding", NOT_UTF8) if bad else {"text": "\n".join(lines).strip()}
            start, lines, bad = None, [], False
            continue
        if start is None:
            start = number
        if line is None:
            bad = True
        else:
            lines.append(line.rstrip("\r\n"))
    if start is not None:
        yield start, RowProblem("encoding", NOT_UTF8) if bad else {"text": "\n".join(lines).strip()}


class _LineFeed:
    """Feeds decoded lines to csv.reader and remembers which were not UTF-8."""

    def __init__(self, fileobj):
        self.lines = _decoded_lines(fileobj)
        self.number = 0
        self.bad: list[int] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        self.number, line = next(self.lines)
        if line is None:
            self.bad.append(self.number)
            return ""
        return line


def csv_rows(
    fileobj, *, delimiter: str = ",", header: bool = True
) -> Iterator[tuple[int, dict | RowProblem]]:
    """CSV/TSV records as dicts keyed by the header row (or column_1, column_2... without one)."""
    feed = _LineFeed(fileobj)
    reader = csv.reader(feed, delimiter=delimiter, strict=False)
    columns: list[str] | None = None
    while True:
        start = feed.number + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, RowProblem("csv", f"This CSV record cannot be read: {exc}.")
            return
        if feed.bad and feed.bad[-1] >= start:
            yield start, RowProblem("encoding", NOT_UTF8)
            if columns is None:
                return
            continue
        if not any(cell.strip() for cell in record):
            continue
        if columns is None:
            if header:
                columns = [c.strip() for c in record]
                columns_check(columns)
                continue
            columns = [f"column_{n}" for n in range(1, len(record) + 1)]
        if len(record) > len(columns):
            yield (
                start,
                RowProblem(
                    None,
                    f"This row has {len(record)} cells but the header names {len(columns)} columns; "
                    "quote cells that contain the delimiter.",
                ),
            )
            continue
        row = {}
        problem = None
        for name, cell in zip(columns, record, strict=False):
            if name in JSON_COLUMNS and cell[:1] in ("[", "{"):
                try:
                    row[name] = json.loads(cell)
                except ValueError as exc:
                    problem = RowProblem(name, f"The {name} cell must hold valid JSON: {exc.msg}.")
                    break
            else:
                row[name] = cell
        yield start, problem or row


def columns_check(columns: list[str]) -> None:
    empty = [n for n, c in enumerate(columns, start=1) if not c]
    seen, dupes = set(), []
    for c in columns:
        if c and c in seen:
            dupes.append(c)
        seen.add(c)
    if empty or dupes:
        message = (
            f"Header column {empty[0]} has no name; name every column in the first row."
            if empty
            else f"The header names column {dupes[0]!r} twice; give each column its own name."
        )
        raise ValidationFailed(message, details=[{"row": 1, "field": None, "message": message}])


def json_rows(fileobj) -> Iterator[tuple[int, dict | RowProblem]]:
    """A JSON array of item objects, or an object whose "items" key holds that array, read one
    value at a time."""
    stream = _JsonStream(fileobj)
    first = stream.peek_char()
    if first == "" and not stream.bad_bytes:
        return
    if first == "{":
        problem = _json_seek_items(stream)
        if problem:
            yield 1, problem
            return
    elif first != "[":
        yield (
            1,
            stream.problem(
                'A .json file holds an array of items ([{...}, {...}]) or {"items": [...]}; '
                "for one object per line use .jsonl."
            ),
        )
        return
    stream.take("[")
    if stream.peek_char() == "]":
        return
    number = 0
    while True:
        number += 1
        value = stream.value()
        if isinstance(value, RowProblem):
            yield number, value
            return
        if isinstance(value, dict):
            yield number, value
        else:
            yield (
                number,
                RowProblem("item", 'Each item in the array must be an object such as {"text": "..."}.'),
            )
        if stream.take(","):
            continue
        if stream.take("]"):
            return
        yield (
            number + 1,
            stream.problem(
                f"Expected , or ] after item {number} (line {stream.line}); the JSON is cut short or broken."
            ),
        )
        return


def _json_seek_items(stream: "_JsonStream") -> RowProblem | None:
    """Moves past `{..., "items": ` so the array comes next."""
    stream.take("{")
    while True:
        key = stream.value()
        if isinstance(key, RowProblem):
            return key
        if not isinstance(key, str) or not stream.take(":"):
            return stream.problem(f"Not valid JSON near line {stream.line}.")
        if key == "items":
            if stream.peek_char() != "[":
                return RowProblem("items", '"items" must be an array of objects.')
            return None
        skipped = stream.value()
        if isinstance(skipped, RowProblem):
            return skipped
        if stream.take(","):
            continue
        return stream.problem('The JSON object has no "items" array.')


_SPACE = re.compile(r"[ \t\r\n]*")


class _JsonStream:
    """Decodes one JSON value at a time from a binary file, reading only as much as it needs."""

    def __init__(self, fileobj):
        self.file = fileobj
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.raw = json.JSONDecoder().raw_decode
        self.buf = ""
        self.pos = 0
        self.line = 1
        self.eof = False
        self.bad_bytes = False
        # A value larger than this that still does not parse is a broken file, not a big item.
        self.max_value_chars = settings.SYNTHLAB_MAX_TEXT_CHARS * 8 + _CHUNK

    def _more(self) -> bool:
        """Reads the next chunk into the buffer; False at the end of the file."""
        if self.eof:
            return False
        chunk = self.file.read(_CHUNK)
        try:
            text = self.decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError:
            self.bad_bytes = self.eof = True
            return False
        if not chunk:
            self.eof = True
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        return bool(text) or not self.eof

    def _advance(self, to: int) -> None:
        self.line += self.buf.count("\n", self.pos, to)
        self.pos = to

    def _skip_space(self) -> None:
        while True:
            self._advance(_SPACE.match(self.buf, self.pos).end())
            if self.pos < len(self.buf) or not self._more():
                return

    def peek_char(self) -> str:
        self._skip_space()
        return self.buf[self.pos] if self.pos < len(self.buf) else ""

    def take(self, char: str) -> bool:
        if self.peek_char() == char:
            self._advance(self.pos + 1)
            return True
        return False

    def problem(self, message: str) -> RowProblem:
        if self.bad_bytes:
            return RowProblem(
                "encoding", "The file is not UTF-8 text here; save it as UTF-8 and import it again."
            )
        return RowProblem("json", message)

    def value(self):
        self._skip_space()
        while True:
            try:
                value, end = self.raw(self.buf, self.pos)
            except ValueError as exc:
                at = getattr(exc, "pos", self.pos)
                line = self.line + self.buf.count("\n", self.pos, at)
                # Cut off by the end of the buffer: read on, unless the file is over or the value absurd.
                if len(self.buf) - self.pos < self.max_value_chars and self._more():
                    continue
                return self.problem(f"Not valid JSON: {getattr(exc, 'msg', exc)} (line {line}).")
            # A number or literal ending right at the buffer's end may go on in the next chunk.
            if end >= len(self.buf) and not isinstance(value, dict | list | str) and self._more():
                continue
            self._advance(end)
            return value


def rows_preview(rows: Iterable[tuple[int, dict | RowProblem]], *, limit: int = 10):
    """The first `limit` rows and the keys they use, in first-seen order."""
    out, keys = [], {}
    for number, row in rows:
        out.append((number, row))
        if isinstance(row, dict):
            for key in row:
                keys.setdefault(key, None)
        if len(out) >= limit:
            break
    return out, list(keys)
