"""Importing items: every row checked, then written in batches inside one transaction.

All or nothing: the first bad row stops the writing (rows keep being checked, so the answer lists
up to MAX_PROBLEMS problems) and the transaction is rolled back, so a failed import leaves the
project as it was. The same code serves the API, the browser and bench/import_bench.py.

The fast path writes with plain SQL instead of one ORM object per row: on PostgreSQL COPY (item
ids taken from the table's sequence first, so candidates and review tasks can point at them), on
SQLite executemany; a writer thread writes one batch while the next is checked. Memory stays flat
in the file size: rows stream in from the parser and at most two batches are held; duplicate
external ids across batches are found in the database (a row this import wrote carries the
import's timestamp), not in a set that grows with the file.

What an imported item may carry (keys of a JSON object, or CSV columns):

- `text`, `prompt` or `messages` (a list of {role, content}); at least one is needed.
- `external_id`: re-importing it updates that item (its text, prompt and messages are replaced;
  `metadata`, `split` and the reference only when the row carries them) instead of adding one.
- `split`: train (the default) or eval. `metadata`: an object; keys this list does not name are
  kept in metadata too.
- a reference that came with the item, stored in `Item.reference` as an object:
  classification `label`/`labels` -> {"labels": [...]}, NER `spans` (or `label`/`labels` holding
  spans) -> {"spans": [{start, end, label, text}]}, any `answer` -> {"answer": "..."}; other task
  types keep `label`/`labels` as given. Labels are checked against the project's label set.
- `candidates`: [{"text", "label", "model"}]; a candidate already on an updated item (same text,
  label and model) is not added twice.
"""

import gc
import json
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from synthlab.errors import Conflict, ValidationFailed

from .. import importing
from ..importing import RowProblem
from ..models import Candidate, CandidateSource, Item, ItemStatus, Project, ReviewMode, Split, TaskType
from ..validation import content_hash, label_value_validate
from .tasks import review_tasks_sync

MAX_PROBLEMS = 100
BATCH_SIZE = 2000
ITEM_KEYS = frozenset(
    {
        "text",
        "prompt",
        "messages",
        "external_id",
        "metadata",
        "split",
        "candidates",
        "label",
        "labels",
        "spans",
        "answer",
    }
)
# Fields a browser or API mapping may take from a differently named column or key.
MAPPABLE_FIELDS = ("text", "prompt", "external_id", "split", "label")
MESSAGE_ROLES = frozenset({"system", "user", "assistant", "tool"})
SPLITS = frozenset(Split.values)
# Plain strings: reading an enum member's .value costs more than the rest of a row's write.
_TRAIN = str(Split.TRAIN.value)
_NEW = str(ItemStatus.NEW.value)
_IMPORT = str(CandidateSource.IMPORT.value)


@dataclass(slots=True)
class CleanItem:
    row: int
    external_id: str | None
    text: str
    prompt: str
    messages: str | None  # JSON text
    metadata: str | None  # JSON text; None: the row did not say
    split: str | None  # None: the row did not say
    reference: str | None  # JSON text; None: the row did not say
    content_hash: str
    candidates: list | tuple  # [(text, label, model)]


def _dumps(value) -> str:
    return orjson.dumps(value).decode()


NUL_MESSAGE = "Contains a NUL character (\\u0000), which cannot be stored; remove it."
SURROGATE_MESSAGE = "Contains an unpaired surrogate (a lone \\ud800-\\udfff escape), which is not valid text."


def _unstorable(text: str) -> str | None:
    """Why a string cannot be stored as text (PostgreSQL refuses NUL characters and unpaired
    surrogates, which a JSON escape like \\ud800 can produce), or None."""
    if "\x00" in text:
        return NUL_MESSAGE
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_MESSAGE
    return None


def _json_text(value, field: str, problem) -> str | None:
    """`value` as JSON text, or None after reporting why it cannot be stored."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError as exc:  # orjson.JSONEncodeError: surrogates, integers over 64 bits
        problem(field, SURROGATE_MESSAGE if "surrogates" in str(exc) else f"Cannot be stored: {exc}.")
        return None
    if "\\u0000" in text:
        problem(field, NUL_MESSAGE)
        return None
    return text


def _label_key(label) -> str:
    return json.dumps(label, sort_keys=True, separators=(",", ":"))


def mapping_clean(mapping: dict | None) -> dict[str, str]:
    """A {field: column} mapping with the empty choices dropped. Raises ValidationFailed."""
    clean = {}
    for field, column in (mapping or {}).items():
        if column in (None, ""):
            continue
        if field not in MAPPABLE_FIELDS:
            raise ValidationFailed(
                f"Cannot map a column to {field!r}; map columns to: {', '.join(MAPPABLE_FIELDS)}.",
                details=[{"row": None, "field": field, "message": "Not a mappable field."}],
            )
        if not isinstance(column, str):
            raise ValidationFailed(
                f"The column mapped to {field} must be named by a string.",
                details=[{"row": None, "field": field, "message": "Name the column."}],
            )
        clean[field] = column
    columns = list(clean.values())
    for column in columns:
        if columns.count(column) > 1:
            fields = [f for f, c in clean.items() if c == column]
            raise ValidationFailed(
                f"Column {column!r} is mapped to both {fields[0]} and {fields[1]}; map it to one field.",
                details=[{"row": None, "field": fields[1], "message": "Column already mapped."}],
            )
    return clean


def row_map(row: dict, mapping: dict[str, str]) -> tuple[dict, dict]:
    """(the row under its item keys, the columns that go to metadata because a mapped column took
    their name)."""
    if not mapping:
        return row, {}
    sources = set(mapping.values())
    out = {field: row[column] for field, column in mapping.items() if column in row}
    displaced = {}
    for key, value in row.items():
        if key in sources:
            continue
        if key in mapping:
            displaced[key] = value
        else:
            out[key] = value
    return out, displaced


class RowChecker:
    """Checks one row at a time against a project; cheap enough for 100k rows a second."""

    def __init__(self, *, project: Project, mapping: dict | None = None):
        self.project = project
        self.task_type = project.task_type
        self.mapping = mapping_clean(mapping)
        self.max_chars = settings.SYNTHLAB_MAX_TEXT_CHARS

    def clean(self, number: int, row) -> tuple[CleanItem | None, list[dict]]:
        """The row ready to write, or None and its problems. Written for speed: this runs once per
        imported row, so the common case (a dict of strings) takes the shortest path."""
        if type(row) is not dict:
            if isinstance(row, RowProblem):
                return None, [{"row": number, "field": row.field, "message": row.message}]
            if not isinstance(row, dict):
                message = 'Each item must be an object like {"text": "..."}.'
                return None, [{"row": number, "field": "item", "message": message}]
        problems: list[dict] = []

        def problem(field, message):
            problems.append({"row": number, "field": field, "message": message})

        if self.mapping:
            row, extra = row_map(row, self.mapping)
        else:
            extra = {}
        if not ITEM_KEYS.issuperset(row):
            for key in row:
                if key not in ITEM_KEYS:
                    extra[key] = row[key]
        max_chars = self.max_chars
        get = row.get

        text = get("text")
        if text is None:
            text = ""
        elif type(text) is not str:
            problem("text", "Text must be a string.")
            text = ""
        elif len(text) > max_chars:
            problem(
                "text",
                f"The text has {len(text):,} characters; the limit is {max_chars:,}. Shorten or split it.",
            )
        prompt = get("prompt")
        if prompt is None:
            prompt = ""
        elif type(prompt) is not str:
            problem("prompt", "The prompt must be a string.")
            prompt = ""
        elif len(prompt) > max_chars:
            problem(
                "prompt",
                f"The prompt has {len(prompt):,} characters; the limit is {max_chars:,}. Shorten it.",
            )
        messages = get("messages")
        last_user = ""
        if messages is not None and messages != "" and messages != []:
            messages, last_user = self._messages(messages, problem)
        else:
            messages = None
        display = text or prompt or last_user
        if (not display or (display[0].isspace() and not display.strip())) and not problems:
            column = self.mapping.get("text") or self.mapping.get("prompt")
            problem(
                "text",
                f"This row has no text: the {column!r} column is empty or missing."
                if column
                else "This row has no text: give it a text, a prompt or messages.",
            )

        external_id = get("external_id")
        if external_id is not None:
            if type(external_id) is int:
                external_id = str(external_id)
            elif type(external_id) is not str:
                problem("external_id", "external_id must be a string or a whole number.")
                external_id = None
            else:
                external_id = external_id.strip() or None
                if external_id is not None and len(external_id) > 255:
                    problem("external_id", "external_id is longer than 255 characters.")

        split = get("split")
        if split is not None:
            if type(split) is not str:
                problem("split", "Split must be train or eval.")
                split = None
            elif split not in SPLITS:
                split = split.strip().lower() or None
                if split is not None and split not in SPLITS:
                    problem("split", f"Split must be train or eval, not {get('split')!r}.")

        metadata = get("metadata")
        if metadata is not None and type(metadata) is not dict:
            problem("metadata", "metadata must be an object (key: value pairs).")
            metadata = None
        if extra:
            metadata = {**extra, **(metadata or {})}

        reference = None
        if "label" in row or "labels" in row or "spans" in row or "answer" in row:
            reference = self._reference(row, display, problem)
        candidates = get("candidates")
        if candidates is not None and candidates != "" and candidates != []:
            candidates = self._candidates(candidates, display, problem)
        else:
            candidates = ()

        if problems:
            return None, problems
        if messages is not None:
            messages = _json_text(messages, "messages", problem)
        if metadata is not None:
            metadata = _json_text(metadata, "metadata", problem)
        if reference is not None:
            reference = _json_text(reference, "label", problem)
        for field, value in (("text", text), ("prompt", prompt), ("external_id", external_id)):
            if value and (bad := _unstorable(value)):
                problem(field, bad)
        for candidate in candidates:
            _json_text(candidate, "candidates", problem)
        if problems:
            return None, problems
        return (
            CleanItem(
                row=number,
                external_id=external_id,
                text=text,
                prompt=prompt,
                messages=messages,
                metadata=metadata,
                split=split,
                reference=reference,
                content_hash=content_hash(display),
                candidates=candidates,
            ),
            problems,
        )

    def _messages(self, messages, problem):
        if not isinstance(messages, list):
            problem("messages", 'messages must be a list like [{"role": "user", "content": "..."}].')
            return None, ""
        total, last_user = 0, ""
        for index, message in enumerate(messages, start=1):
            if (
                not isinstance(message, dict)
                or message.get("role") not in MESSAGE_ROLES
                or not isinstance(message.get("content"), str)
            ):
                problem(
                    "messages",
                    f"Message {index} needs a role (system, user, assistant or tool) and content (a string).",
                )
                return None, ""
            total += len(message["content"])
            if message["role"] == "user":
                last_user = message["content"]
        if total > self.max_chars:
            problem("messages", f"The messages hold {total:,} characters; the limit is {self.max_chars:,}.")
        return messages, last_user

    def _reference(self, row, display, problem):
        reference = {}
        for key in ("spans", "labels", "label"):
            value = row.get(key)
            if value in (None, "", []):
                continue
            try:
                value = label_value_validate(project=self.project, text=display, label=value)
            except ValueError as exc:
                problem(key, str(exc))
                return None
            if self.task_type == TaskType.NER:
                reference["spans"] = value
            elif self.task_type == TaskType.CLASSIFICATION:
                reference["labels"] = value if isinstance(value, list) else [value]
            else:
                reference[key] = value
            break
        answer = row.get("answer")
        if answer not in (None, ""):
            if not isinstance(answer, str):
                problem("answer", "answer must be a string.")
            elif len(answer) > self.max_chars:
                problem(
                    "answer", f"The answer has {len(answer):,} characters; the limit is {self.max_chars:,}."
                )
            else:
                reference["answer"] = answer
        return reference or None

    def _candidates(self, candidates, display, problem) -> list:
        if not isinstance(candidates, list):
            problem("candidates", 'candidates must be a list like [{"text": "...", "model": "..."}].')
            return []
        out, seen = [], set()
        for index, candidate in enumerate(candidates, start=1):
            if not isinstance(candidate, dict):
                problem("candidates", f"Candidate {index} must be an object with text, label and model.")
                continue
            text = candidate.get("text") or ""
            model = candidate.get("model") or ""
            if not isinstance(text, str) or not isinstance(model, str):
                problem("candidates", f"Candidate {index}: text and model must be strings.")
                continue
            if len(text) > self.max_chars:
                problem(
                    "candidates",
                    f"Candidate {index} has {len(text):,} characters; the limit is {self.max_chars:,}.",
                )
                continue
            if len(model) > 255:
                problem("candidates", f"Candidate {index}: the model name is longer than 255 characters.")
                continue
            try:
                label = label_value_validate(project=self.project, text=display, label=candidate.get("label"))
            except ValueError as exc:
                problem("candidates", f"Candidate {index}: {exc}")
                continue
            if not text and label is None:
                problem("candidates", f"Candidate {index} needs a text or a label.")
                continue
            key = (text, _label_key(label), model)
            if key not in seen:
                seen.add(key)
                out.append((text, label, model))
        return out


class _Writer:
    """Plain-SQL writes for one import, on the database connection's own DB-API connection so
    that they can run on the writer thread (see _Import); subclasses per database."""

    item_columns = (
        "project_id",
        "external_id",
        "text",
        "prompt",
        "messages",
        "metadata",
        "split",
        "reference",
        "is_gold",
        "status",
        "content_hash",
        "created_at",
        "updated_at",
    )
    candidate_columns = (
        "item_id",
        "text",
        "label",
        "source",
        "model",
        "recipe",
        "provenance",
        "scores",
        "created_by_id",
        "created_at",
    )

    def __init__(self, *, project: Project, user, stamp):
        self.project_id = project.pk
        self.user_id = getattr(user, "pk", None)
        self.stamp = stamp
        self.db_stamp = connection.ops.adapt_datetimefield_value(stamp)
        self.item_table = connection.ops.quote_name(Item._meta.db_table)
        self.candidate_table = connection.ops.quote_name(Candidate._meta.db_table)
        self.provenance = _dumps({"source": _IMPORT})

    def item_row(self, c: CleanItem) -> tuple:
        return (
            self.project_id,
            c.external_id,
            c.text,
            c.prompt,
            c.messages,
            c.metadata if c.metadata is not None else "{}",
            c.split or _TRAIN,
            c.reference,
            False,
            _NEW,
            c.content_hash,
            self.db_stamp,
            self.db_stamp,
        )

    def candidate_row(self, item_id: int, text: str, label, model: str) -> tuple:
        return (
            item_id,
            text,
            _dumps(label) if label is not None else None,
            _IMPORT,
            model,
            "",
            self.provenance,
            "{}",
            self.user_id,
            self.db_stamp,
        )

    def items_by_external_id(self, cursor, external_ids: list[str]) -> dict[str, tuple[int, bool]]:
        """{external_id: (item id, written by this import)} for those that exist in the project.
        Runs on Django's cursor."""
        if not external_ids:
            return {}
        cursor.execute(
            f"SELECT id, external_id, (created_at = %s OR updated_at = %s) FROM {self.item_table} "
            f"WHERE project_id = %s AND external_id {self.in_list.replace('?', '%s')}",
            [self.db_stamp, self.db_stamp, self.project_id, self.list_param(external_ids)],
        )
        return {ext: (pk, bool(touched)) for pk, ext, touched in cursor.fetchall()}

    def write(
        self, raw, new: list[CleanItem], updates: list[tuple[int, CleanItem]], *, need_ids: bool
    ) -> tuple[int, list, set]:
        """Writes one checked batch: new items, updated items, their new candidates. Answers how
        many items were created, their ids (when `need_ids` or some have candidates; else maybe
        none) and the ids of items that got candidates."""
        cursor = raw.cursor()
        try:
            need_ids = need_ids or any(item.candidates for item in new)
            ids = self.items_insert(cursor, new, need_ids=need_ids)
            self.items_update(cursor, updates)
            candidate_rows, given = [], set()
            candidate_row = self.candidate_row
            for pk, item in zip(ids, new, strict=need_ids):
                if item.candidates:
                    given.add(pk)
                    for text, label, model in item.candidates:
                        candidate_rows.append(candidate_row(pk, text, label, model))
            updated_with_candidates = [pk for pk, item in updates if item.candidates]
            if updated_with_candidates:
                have = self.candidate_keys(cursor, updated_with_candidates)
                for pk, item in updates:
                    for text, label, model in item.candidates:
                        if (pk, text, _label_key(label), model) not in have:
                            candidate_rows.append(candidate_row(pk, text, label, model))
                            given.add(pk)
            self.candidates_insert(cursor, candidate_rows)
        finally:
            cursor.close()
        return len(new), ids, given

    def candidate_keys(self, cursor, item_ids: list[int]) -> set[tuple]:
        """(item id, text, label key, model) of the candidates these items already have."""
        cursor.execute(
            f"SELECT item_id, text, label, model FROM {self.candidate_table} WHERE item_id {self.in_list}",
            [self.list_param(item_ids)],
        )
        return self._candidate_key_set(cursor.fetchall())

    @staticmethod
    def _candidate_key_set(rows) -> set[tuple]:
        keys = set()
        for item_id, text, label, model in rows:
            if isinstance(label, str):
                label = json.loads(label)
            keys.add((item_id, text, _label_key(label), model))
        return keys


class _PostgresWriter(_Writer):
    in_list = "= ANY(%s)"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sequence = None

    @staticmethod
    def list_param(values):
        return list(values)

    # The lookups probe the indexes once per key (a LATERAL subquery with LIMIT/OFFSET is not
    # flattened): within an import the table's statistics are stale, and `= ANY(...)` then got
    # planned as a scan of every item of the project, once per batch.
    def items_by_external_id(self, cursor, external_ids: list[str]) -> dict[str, tuple[int, bool]]:
        if not external_ids:
            return {}
        cursor.execute(
            "SELECT i.id, i.external_id, (i.created_at = %s OR i.updated_at = %s) "
            "FROM unnest(%s::text[]) AS e(external_id) CROSS JOIN LATERAL ("
            f"SELECT id, external_id, created_at, updated_at FROM {self.item_table} "
            "WHERE project_id = %s AND external_id = e.external_id LIMIT 1) AS i",
            [self.db_stamp, self.db_stamp, list(external_ids), self.project_id],
        )
        return {ext: (pk, bool(touched)) for pk, ext, touched in cursor.fetchall()}

    def candidate_keys(self, cursor, item_ids: list[int]) -> set[tuple]:
        cursor.execute(
            "SELECT c.item_id, c.text, c.label, c.model FROM unnest(%s::bigint[]) AS e(item_id) "
            f"CROSS JOIN LATERAL (SELECT item_id, text, label, model FROM {self.candidate_table} "
            "WHERE item_id = e.item_id OFFSET 0) AS c",
            [list(item_ids)],
        )
        return self._candidate_key_set(cursor.fetchall())

    def items_insert(self, cursor, items: list[CleanItem], *, need_ids: bool) -> list[int]:
        if not items:
            return []
        item_row = self.item_row
        if not need_ids:
            # Nothing will point at these rows: let the column default number them.
            with cursor.copy(f"COPY {self.item_table} ({', '.join(self.item_columns)}) FROM STDIN") as copy:
                write = copy.write_row
                for c in items:
                    write(item_row(c))
            return []
        if self.sequence is None:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Item._meta.db_table])
            self.sequence = cursor.fetchone()[0]
        # Ids first, so that COPY (which answers no ids) can write rows that candidates and review
        # tasks then point at.
        cursor.execute("SELECT nextval(%s) FROM generate_series(1, %s)", [self.sequence, len(items)])
        ids = [row[0] for row in cursor.fetchall()]
        columns = ", ".join(("id", *self.item_columns))
        with cursor.copy(f"COPY {self.item_table} ({columns}) FROM STDIN") as copy:
            write = copy.write_row
            for pk, c in zip(ids, items, strict=True):
                write((pk, *item_row(c)))
        return ids

    def items_update(self, cursor, updates: list[tuple[int, CleanItem]]) -> None:
        if not updates:
            return
        # One statement per batch: the new values travel as arrays and join on id. A row that
        # says nothing about metadata, split or the reference keeps the stored value.
        cursor.execute(
            f"UPDATE {self.item_table} AS i SET text = v.text, prompt = v.prompt, "
            "messages = v.messages::jsonb, metadata = COALESCE(v.metadata::jsonb, i.metadata), "
            "split = COALESCE(v.split, i.split), reference = COALESCE(v.reference::jsonb, i.reference), "
            "content_hash = v.content_hash, updated_at = %s "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
            "%s::text[], %s::text[]) AS v(id, text, prompt, messages, metadata, split, reference, content_hash) "
            "WHERE i.id = v.id",
            [
                self.stamp,
                [pk for pk, _ in updates],
                [c.text for _, c in updates],
                [c.prompt for _, c in updates],
                [c.messages for _, c in updates],
                [c.metadata for _, c in updates],
                [c.split for _, c in updates],
                [c.reference for _, c in updates],
                [c.content_hash for _, c in updates],
            ],
        )

    def candidates_insert(self, cursor, rows: list[tuple]) -> None:
        if not rows:
            return
        columns = ", ".join(self.candidate_columns)
        with cursor.copy(f"COPY {self.candidate_table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


class _SqliteWriter(_Writer):
    in_list = "IN (SELECT value FROM json_each(?))"

    @staticmethod
    def list_param(values):
        return json.dumps(list(values))

    def items_insert(self, cursor, items: list[CleanItem], *, need_ids: bool) -> list[int]:
        if not items:
            return []
        columns = ", ".join(self.item_columns)
        marks = ", ".join(["?"] * len(self.item_columns))
        cursor.executemany(
            f"INSERT INTO {self.item_table} ({columns}) VALUES ({marks})", map(self.item_row, items)
        )
        # The transaction holds SQLite's write lock, so AUTOINCREMENT handed out consecutive ids.
        cursor.execute("SELECT last_insert_rowid()")
        last = cursor.fetchone()[0]
        return list(range(last - len(items) + 1, last + 1))

    def items_update(self, cursor, updates: list[tuple[int, CleanItem]]) -> None:
        if not updates:
            return
        cursor.executemany(
            f"UPDATE {self.item_table} SET text = ?, prompt = ?, messages = ?, "
            "metadata = COALESCE(?, metadata), split = COALESCE(?, split), "
            "reference = COALESCE(?, reference), content_hash = ?, updated_at = ? WHERE id = ?",
            [
                (
                    c.text,
                    c.prompt,
                    c.messages,
                    c.metadata,
                    c.split,
                    c.reference,
                    c.content_hash,
                    self.db_stamp,
                    pk,
                )
                for pk, c in updates
            ],
        )

    def candidates_insert(self, cursor, rows: list[tuple]) -> None:
        if not rows:
            return
        columns = ", ".join(self.candidate_columns)
        marks = ", ".join(["?"] * len(self.candidate_columns))
        cursor.executemany(f"INSERT INTO {self.candidate_table} ({columns}) VALUES ({marks})", rows)


class _Import:
    """One import. The calling thread reads and checks rows; a single writer thread writes the
    previous batch meanwhile (the database works on it while Python checks the next one: the
    driver releases the GIL while SQLite inserts or PostgreSQL answers). Only one of the two
    threads uses the connection at a time: the caller waits for the writer before it queries."""

    def __init__(self, *, project: Project, user, mapping, batch_size: int):
        self.project = project
        self.checker = RowChecker(project=project, mapping=mapping)
        self.batch_size = batch_size
        self.stamp = timezone.now()
        writer_class = _PostgresWriter if connection.vendor == "postgresql" else _SqliteWriter
        self.writer = writer_class(project=project, user=user, stamp=self.stamp)
        self.problems: list[dict] = []
        self.stopped_early = False
        # External ids of checked rows that were not written because an earlier row failed.
        self.unwritten_ids: set[str] = set()
        self.created = 0
        self.updated = 0
        self.label_tasks = ReviewMode.LABEL in project.modes and project.task_type in (
            TaskType.CLASSIFICATION,
            TaskType.NER,
        )
        self.pending: tuple[Future, list[int]] | None = None

    def run(self, rows: Iterable[tuple[int, Any]]) -> None:
        clean = self.checker.clean
        problems = self.problems
        batch: list[CleanItem] = []
        connection.ensure_connection()
        raw = connection.connection
        with (
            connection.cursor() as cursor,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer") as pool,
        ):
            try:
                for number, row in rows:
                    item, row_problems = clean(number, row)
                    if row_problems:
                        problems.extend(row_problems)
                        if len(problems) >= MAX_PROBLEMS:
                            self.stopped_early = True
                            break
                    else:
                        batch.append(item)
                        if len(batch) >= self.batch_size:
                            self.flush(cursor, pool, raw, batch)
                            batch = []
                self.flush(cursor, pool, raw, batch)
                self.settle()
            finally:
                # Never leave the writer running on the connection while the transaction ends.
                if self.pending is not None:
                    wait([self.pending[0]])

    def settle(self) -> None:
        """Waits for the batch being written (raising what it raised) and makes its review tasks."""
        if self.pending is None:
            return
        future, updated_ids = self.pending
        self.pending = None
        created, ids, given = future.result()
        self.created += created
        self.updated += len(updated_ids)
        task_items = [*ids, *updated_ids] if self.label_tasks else given
        if task_items:
            review_tasks_sync(project=self.project, item_ids=task_items)

    def flush(self, cursor, pool, raw, batch: list[CleanItem]) -> None:
        if not batch:
            return
        self.settle()
        first_row: dict[str, int] = {}
        keep: list[CleanItem] = []
        for item in batch:
            ext = item.external_id
            if ext is not None:
                if ext in first_row:
                    self._duplicate(item, f"row {first_row[ext]}")
                    continue
                if ext in self.unwritten_ids:
                    self._duplicate(item, "an earlier row")
                    continue
                first_row[ext] = item.row
            keep.append(item)
        existing = self.writer.items_by_external_id(cursor, list(first_row))
        new: list[CleanItem] = []
        updates: list[tuple[int, CleanItem]] = []
        for item in keep:
            found = existing.get(item.external_id) if item.external_id is not None else None
            if found is None:
                new.append(item)
            elif found[1]:
                self._duplicate(item, "an earlier row")
            else:
                updates.append((found[0], item))
        if self.problems:
            self.unwritten_ids.update(first_row)
            return
        future = pool.submit(self.writer.write, raw, new, updates, need_ids=self.label_tasks)
        self.pending = (future, [pk for pk, _ in updates])

    def _duplicate(self, item: CleanItem, where: str) -> None:
        self.problems.append(
            {
                "row": item.row,
                "field": "external_id",
                "message": f"external_id {item.external_id!r} already appears on {where} of this file; "
                "each external_id may appear once per import.",
            }
        )

    def failure(self) -> ValidationFailed:
        problems = sorted(self.problems, key=lambda p: (p["row"] is None, p["row"] or 0))[:MAX_PROBLEMS]
        first = problems[0]
        where = f"row {first['row']}" if first["row"] is not None else "the file"
        field = f", {first['field']}" if first["field"] else ""
        if self.stopped_early:
            summary = f"At least {MAX_PROBLEMS} problems were found (checking stopped there)"
        elif len(self.problems) == 1:
            summary = "1 problem was found"
        else:
            summary = f"{len(self.problems)} problems were found"
        return ValidationFailed(
            f"{summary}; nothing was imported. First: {where}{field}: {first['message']}",
            details=problems,
        )


@contextmanager
def _no_cyclic_gc():
    """Pauses the cycle collector: an import allocates millions of short-lived, acyclic objects
    (freed by reference counting anyway), and the collector's passes over them cost ~10%."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def items_import(
    *,
    project: Project,
    rows: Iterable[tuple[int, Any]],
    user=None,
    mapping: dict | None = None,
    batch_size: int = BATCH_SIZE,
) -> dict[str, int]:
    """Imports `rows` ((row number, dict or RowProblem), from annotation.importing or a list)
    into `project`: all of them, or, when any row is bad, none (ValidationFailed with a detail per
    problem). Answers {"created": n, "updated": n}.

    Takes no locks beyond the rows it writes; two imports of the same external ids at once make
    the second wait, and a clash the first check could not see answers Conflict."""
    job = _Import(project=project, user=user, mapping=mapping, batch_size=batch_size)
    try:
        with transaction.atomic(), _no_cyclic_gc():
            job.run(rows)
            if job.problems:
                raise job.failure()
    except IntegrityError as exc:
        raise Conflict(
            "Another import wrote the same external ids at the same time; nothing was imported. Try again."
        ) from exc
    return {"created": job.created, "updated": job.updated}


def items_import_file(
    *,
    project: Project,
    file,
    filename: str,
    fmt: str | None = None,
    txt_mode: str = "lines",
    header: bool = True,
    mapping: dict | None = None,
    user=None,
    size: int | None = None,
    batch_size: int = BATCH_SIZE,
) -> dict[str, int]:
    """Imports an uploaded file (a binary file object), read as a stream; see items_import."""
    importing.upload_size_check(size=size)
    fmt = importing.format_detect(filename=filename, fmt=fmt)
    rows = importing.rows_read(file, fmt=fmt, txt_mode=txt_mode, header=header)
    return items_import(project=project, rows=rows, user=user, mapping=mapping, batch_size=batch_size)
