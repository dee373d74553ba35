"""The writers on their own (no database: they take plain rows).

The Parquet writer keeps about a row group's worth of rows (BUFFER_BYTES of text) before it
converts and writes them, whatever the size of one row: long rows make more, smaller row groups,
and every row comes back as written, in order. Its conversion (exports/arrow.py) gives the table
pyarrow's own JSON reader gives for the same rows. A parallel export's part (JSONL lines, an Arrow
stream) follows the export's own rows."""

import math
import os
import subprocess
import sys
import threading
import time

import orjson
import pyarrow as pa
import pyarrow.json as paj
import pyarrow.parquet as pq
import pytest

from annotation.exports import arrow
from annotation.exports.rows import FORMATS, export_schema
from annotation.exports.spec import ExportSpec
from annotation.exports.writers import ArrowPartWriter, JsonlWriter, ParquetWriter


def _schema(fmt: str):
    return export_schema(ExportSpec(format=fmt, file_type="parquet", filters={}, options={"bare": True}))


def _dpo(n: int, chars: int) -> dict:
    return {"prompt": f"question {n}", "chosen": "ü" * chars, "rejected": f"draft {n}"}


def _dpo_messages(n: int, chars: int) -> dict:
    return {
        "prompt": [{"role": "user", "content": f"question {n}"}],
        "chosen": [{"role": "assistant", "content": "ü" * chars}],
        "rejected": [{"role": "assistant", "content": f"draft {n}"}],
    }


@pytest.mark.parametrize(("fmt", "make"), [("dpo", _dpo), ("dpo_messages", _dpo_messages)])
def test_long_rows_make_small_row_groups_and_round_trip(fmt, make, tmp_path):
    chars = ParquetWriter.BUFFER_BYTES // 3 + 1  # at most three of these fill a row group
    rows = [make(n, chars if n % 4 == 0 else 10) for n in range(40)]
    writer = ParquetWriter(tmp_path / "out.parquet", _schema(fmt))
    for row in rows:
        writer.write(row)
    writer.close()

    file = pq.ParquetFile(tmp_path / "out.parquet")
    assert file.read().to_pylist() == rows
    # 10 long rows, a group ends at the third at the latest: at least 4 groups, none holding more
    # than 3 of them (and the short rows between).
    sizes = [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)]
    assert file.num_row_groups >= 4, sizes
    assert max(sizes) <= 12, sizes


def test_short_rows_share_a_row_group(tmp_path):
    rows = [_dpo(n, 20) for n in range(500)]
    writer = ParquetWriter(tmp_path / "out.parquet", _schema("dpo"))
    for row in rows:
        writer.write(row)
    writer.close()

    file = pq.ParquetFile(tmp_path / "out.parquet")
    assert file.num_row_groups == 1
    assert file.read().to_pylist() == rows


def test_a_part_written_elsewhere_follows_the_rows_in_order(tmp_path):
    """A parallel export's helper writes an Arrow stream; the export appends it after its rows."""
    schema = _schema("dpo")
    first = [_dpo(n, 600_000 if n == 3 else 5) for n in range(10)]
    second = [_dpo(n, 5) for n in range(10, 25)]
    part = ArrowPartWriter(tmp_path / "part.arrows", schema)
    for row in second:
        part.write(row)
    part.close()
    writer = ParquetWriter(tmp_path / "out.parquet", schema)
    for row in first:
        writer.write(row)
    writer.append(tmp_path / "part.arrows")
    writer.close()

    assert pq.read_table(tmp_path / "out.parquet").to_pylist() == first + second


def test_a_row_of_the_wrong_type_is_refused(tmp_path):
    writer = ParquetWriter(tmp_path / "out.parquet", _schema("dpo"))
    writer.write({"prompt": "q", "chosen": ["not", "a", "string"], "rejected": "r"})
    with pytest.raises(Exception, match="chosen"):  # pyarrow names the column that does not fit
        writer.close()
    writer.abort()
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("kernel_copy", [True, False])
def test_a_jsonl_part_is_appended_after_the_rows_byte_for_byte(kernel_copy, tmp_path, monkeypatch):
    """The part's lines follow the export's own, whether the kernel copies them (copy_file_range)
    or, where it cannot, a buffer does."""
    if not kernel_copy:
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    part_lines = b"".join(b'{"n": %d, "text": "%s"}\n' % (n, "ü".encode() * n) for n in range(3000))
    (tmp_path / "part.jsonl").write_bytes(part_lines)
    writer = JsonlWriter(tmp_path / "out.jsonl", None)
    writer.write({"n": -1, "text": "first"})
    writer.append(tmp_path / "part.jsonl")
    writer.close()

    assert (tmp_path / "out.jsonl").read_bytes() == b'{"n":-1,"text":"first"}\n' + part_lines


class _Writing:
    """Another process writing a part, played by a thread: `write(step)` is called for each step,
    a little apart. As a `growing` for append: whether it is still writing, after waiting at most
    the timeout for it to finish."""

    def __init__(self, steps: int, write):
        self.thread = threading.Thread(target=self._run, args=(steps, write))
        self.waits = 0

    def _run(self, steps, write):
        for step in range(steps):
            time.sleep(0.02)
            write(step)

    def __call__(self, timeout: float) -> bool:
        self.waits += 1
        self.thread.join(timeout)
        return self.thread.is_alive()


def test_a_jsonl_part_still_being_written_is_appended_whole(tmp_path):
    """The export copies the helper's lines as they come, lines cut by the helper's buffer
    included, until the helper has finished."""
    lines = [b'{"n": %d, "text": "%s"}\n' % (n, "ü".encode() * n) for n in range(400)]
    data = b"".join(lines)
    part = tmp_path / "part.jsonl"
    part.write_bytes(b"")
    sink = open(part, "ab", buffering=0)  # noqa: SIM115 (closed by the last step)
    pieces = [data[i : i + 997] for i in range(0, len(data), 997)]  # cut inside lines

    def write(step):
        sink.write(pieces[step])
        if step == len(pieces) - 1:
            sink.close()

    writing = _Writing(len(pieces), write)
    writer = JsonlWriter(tmp_path / "out.jsonl", None)
    writer.write({"n": -1})
    writing.thread.start()
    writer.append(part, writing)
    writer.close()

    assert (tmp_path / "out.jsonl").read_bytes() == b'{"n":-1}\n' + data
    assert writing.waits > 1  # it did follow the part as it grew


def test_a_parquet_part_still_being_written_is_appended_whole(tmp_path):
    """The export encodes the helper's row groups as they come, until the helper has finished."""
    schema = _schema("dpo")
    first = [_dpo(n, 5) for n in range(3)]
    groups = [[_dpo(10 * g + n, 50) for n in range(4)] for g in range(6)]
    part = ArrowPartWriter(tmp_path / "part.arrows", schema)

    def write(step):
        for row in groups[step]:
            part.write(row)
        part._flush()  # a row group per step, as a large part makes them
        if step == len(groups) - 1:
            part.close()

    writing = _Writing(len(groups), write)
    writer = ParquetWriter(tmp_path / "out.parquet", schema)
    for row in first:
        writer.write(row)
    writing.thread.start()
    writer.append(tmp_path / "part.arrows", writing)
    writer.close()

    file = pq.ParquetFile(tmp_path / "out.parquet")
    assert file.read().to_pylist() == first + [row for group in groups for row in group]
    assert file.num_row_groups == 1 + len(groups)
    assert writing.waits > 1


def _value(kind: pa.DataType, n: int):
    """Values of every shape a column of `kind` can hold: nulls, empties, non-ASCII text, NaN."""
    if n % 7 == 3:
        return None
    if pa.types.is_string(kind):
        return ["", "plain text", "ünïcödé 🙂 text " * (n % 3), "x" * 5000][n % 4]
    if pa.types.is_boolean(kind):
        return n % 2 == 0
    if pa.types.is_int64(kind):
        return [0, -(2**63), 2**63 - 1, n][n % 4]
    if pa.types.is_float64(kind):
        return [0.5, math.nan, -1.0, 1][n % 4]
    if pa.types.is_list(kind):
        return [_value(kind.value_type, n + i) for i in range(n % 4)]
    return {field.name: _value(field.type, n + i) for i, field in enumerate(kind) if (n + i) % 5}


def _every_schema() -> list:
    """The schema of every format, NER or not, labels with rationales, each once."""
    schemas = {}
    for name in FORMATS:
        for ner in (False, True):
            for options in ({}, {"rationales": True}):
                schema = export_schema(
                    ExportSpec(format=name, file_type="parquet", filters={}, options=options, ner=ner)
                )
                schemas[str(schema)] = schema
    return list(schemas.values())


@pytest.mark.parametrize("schema", _every_schema(), ids=lambda s: ",".join(s.names[:3]))
def test_rows_convert_to_the_table_pyarrows_json_reader_gives(schema):
    rows = [{field.name: _value(field.type, n + i) for i, field in enumerate(schema)} for n in range(60)]
    lines = b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows)
    expected = paj.read_json(pa.BufferReader(lines), parse_options=paj.ParseOptions(explicit_schema=schema))

    converted = arrow.table(rows, schema)

    converted.validate(full=True)
    assert converted.equals(expected)
    assert converted.column(0).null_count > 0


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("prompt", 7),
        ("item_id", "7"),
        ("candidate_ids", "1,2"),
        ("candidate_models", [1]),
        ("item_id", 2**64),
    ],
)
def test_a_value_of_the_wrong_type_names_its_column(column, value):
    schema = export_schema(ExportSpec(format="dpo", file_type="parquet", filters={}, options={}))
    row = {field.name: _value(field.type, 1) for field in schema} | {column: value}

    with pytest.raises(ValueError, match=f"column '{column}'"):
        arrow.table([row], schema)


def test_a_row_with_other_columns_is_refused():
    schema = _schema("dpo")
    with pytest.raises(ValueError, match="rejected"):
        arrow.table([{"prompt": "q", "chosen": "c", "answer": "r"}], schema)


def test_writing_parquet_does_not_import_pandas(tmp_path):
    """pa.array would import pandas (about 45 MB more in every export process)."""
    code = (
        "import sys, pyarrow as pa; from pathlib import Path; "
        "from annotation.exports.writers import ParquetWriter; "
        "schema = pa.schema([('text', pa.string()), ('ids', pa.list_(pa.int64()))]); "
        f"w = ParquetWriter(Path({str(tmp_path / 'out.parquet')!r}), schema); "
        "w.write({'text': 'a', 'ids': [1]}); w.close(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pandas'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert pq.read_table(tmp_path / "out.parquet").to_pylist() == [{"text": "a", "ids": [1]}]
