"""The writers on their own (no database: they take plain rows).

The Parquet writer keeps about a row group's worth of encoded rows (BUFFER_BYTES) before it
converts and writes them, whatever the size of one row: long rows make more, smaller row groups,
and every row comes back as written, in order. A parallel export's part (JSONL lines, an Arrow
stream) follows the export's own rows."""

import os

import pyarrow.parquet as pq
import pytest

from annotation.exports.rows import export_schema
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

    assert writer.rows_written == 40
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
    writer.append(tmp_path / "part.arrows", len(second))
    writer.close()

    assert writer.rows_written == 25
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
    writer.append(tmp_path / "part.jsonl", 3000)
    writer.close()

    assert writer.rows_written == 3001
    assert (tmp_path / "out.jsonl").read_bytes() == b'{"n":-1,"text":"first"}\n' + part_lines
