"""One writer per file type. Each takes rows one at a time and keeps at most a row group in memory.

- jsonl: one JSON object per line, UTF-8, written in small batches.
- parquet: pyarrow with the format's fixed schema, one row group per MB of text (arrow.py converts
  the rows column by column).
- hf: a `datasets` folder: the split's rows written straight into its Arrow data file (converted
  as for Parquet), the folder's metadata by `datasets`, a dataset card (README.md) beside it,
  packed as .zip or .tar.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import orjson

SUFFIX = {"jsonl": ".jsonl", "parquet": ".parquet"}
ARCHIVE_SUFFIX = {"zip": ".zip", "tar": ".tar"}


def file_suffix(file_type: str, archive: str | None) -> str:
    return SUFFIX.get(file_type) or ARCHIVE_SUFFIX[archive or "zip"]


# A part another process is still writing: growing(timeout) waits at most `timeout` seconds for that
# process to finish its part and answers whether it is still writing (False once the part is whole).
Growing = Callable[[float], bool]
# How long an append waits for more of a growing part before it looks again.
POLL_SECONDS = 0.05


def _line(row: dict) -> bytes:
    # orjson: compact UTF-8 JSON (no ASCII escaping; NaN written as null), newline-terminated.
    return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)


class JsonlWriter:
    CARD = False  # whether close() writes the dataset card it is given

    def __init__(self, path: Path, schema):
        self.path = path
        self._file = open(path, "wb", buffering=1 << 20)  # noqa: SIM115 (closed in close())

    def write(self, row: dict) -> None:
        self._file.write(_line(row))

    def append(self, part: Path, growing: Growing | None = None) -> None:
        """Adds the lines another process writes for the rows that follow (a part of a parallel
        export, see exports/parallel.py). While that process still writes them (`growing`), what
        it has written so far is copied as it comes."""
        self._file.flush()
        finished = growing is None
        with open(part, "rb", buffering=0) as source:
            while True:
                # A line cut by the other process's buffer is completed by the next copy.
                _copy_rest(source, self._file.raw)
                if finished:
                    return
                finished = not growing(POLL_SECONDS)

    def close(self, *, card: str = "") -> None:
        self._file.close()

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def _copy_rest(source, target) -> None:
    """Copies what is left of `source` to `target` at its position, inside the kernel
    (copy_file_range) where it can: no buffer in this process. A 115 MB part took 0.02-0.07 s where
    the kernel had pages to reuse and up to 0.34 s where it had to take fresh ones (a virtual
    machine's first touch); through a 1 MB buffer it took 0.06-0.4 s. Elsewhere (another file
    system, no such call) it copies through a buffer."""
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is not None:
        try:
            while copy_range(source.fileno(), target.fileno(), 1 << 30):
                pass
            return
        except OSError:
            pass  # both files' positions are past what was copied: the copy below goes on from there
    shutil.copyfileobj(source, target, 1 << 20)


PART_WRITERS = {}  # file type -> the writer a part of a parallel export writes (filled below)


class ParquetWriter:
    """Rows are kept as they come, one row group's worth (ROWS rows or BUFFER_BYTES of text,
    whichever comes first), then turned into Arrow arrays column by column (exports/arrow.py) and
    written as a row group: no JSON in between, and no pandas."""

    CARD = False
    ROWS = 20_000
    # 1 MB of text per row group: the group's rows, its arrays and their encoding (and in a parallel
    # export the appended part's groups) stay small next to the process's 100 MB of code and Django.
    BUFFER_BYTES = 2**20

    def __init__(self, path: Path, schema):
        from . import arrow  # here: pyarrow and numpy only in processes that write Parquet

        self.path = path
        self.schema = schema
        self._table = arrow.table
        self._size = arrow.sizer(schema)
        self._writer = self._open(path, schema)
        self._rows: list[dict] = []
        self._bytes = 0

    def _open(self, path: Path, schema):
        import pyarrow as pa
        import pyarrow.parquet as pq

        return pq.ParquetWriter(
            str(path),
            schema,
            compression="zstd",
            # Dictionary pages only where values repeat; long texts go plain.
            use_dictionary=[f.name for f in schema if f.name in DICTIONARY_COLUMNS],
            # Min/max statistics only for the columns a reader would filter on: for texts they cost
            # a quarter of the encoding and a fifth of the file, and say nothing.
            write_statistics=[f.name for f in schema if f.name in STATISTICS_COLUMNS],
            # malloc gives the encoder's large buffers back after each row group; the default
            # pool keeps them.
            memory_pool=pa.system_memory_pool(),
        )

    def write(self, row: dict) -> None:
        self._rows.append(row)
        self._bytes += self._size(row)
        if len(self._rows) >= self.ROWS or self._bytes >= self.BUFFER_BYTES:
            self._flush()

    def append(self, part: Path, growing: Growing | None = None) -> None:
        """Adds the row groups another process converts for the rows that follow (an Arrow IPC
        stream written by ArrowPartWriter), one at a time. While that process still writes them
        (`growing`), each group is encoded here as soon as it is in the part."""
        import pyarrow as pa

        self._flush()
        pool = pa.system_memory_pool()
        with open(part, "rb", buffering=0) as file:
            source = pa.PythonFile(_Following(file, growing), mode="r")
            for batch in pa.ipc.open_stream(source, memory_pool=pool):
                self._writer.write_table(pa.Table.from_batches([batch]))

    def _flush(self) -> None:
        if not self._rows:
            return
        self._writer.write_table(self._table(self._rows, self.schema))
        self._rows = []
        self._bytes = 0

    def close(self, *, card: str = "") -> None:
        self._flush()
        self._writer.close()

    def abort(self) -> None:
        self._writer.close()
        self.path.unlink(missing_ok=True)


class _Following:
    """A part another process may still be writing, read as a file that has all of it: a read that
    reaches what is written so far waits for more (`growing`) instead of ending, until the other
    process has finished (no `growing`: the part is whole)."""

    closed = False

    def __init__(self, file, growing: Growing | None):
        self.file, self.growing = file, growing
        self.finished = growing is None
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        chunks, wanted = [], size
        while wanted:
            data = self.file.read(wanted if wanted > 0 else 1 << 20)
            if data:
                chunks.append(data)
                self.position += len(data)
                wanted -= len(data) if wanted > 0 else 0
            elif self.finished:
                break
            else:
                # Once finished, one more read takes what was written last.
                self.finished = not self.growing(POLL_SECONDS)
        return b"".join(chunks)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.position


class ArrowPartWriter(ParquetWriter):
    """A part of a parallel Parquet export: the same row groups, converted the same way, written as
    an Arrow IPC stream (no encoding) that the export's ParquetWriter appends."""

    def _open(self, path: Path, schema):
        import pyarrow as pa

        self._sink = pa.OSFile(str(path), "wb")
        return pa.ipc.new_stream(self._sink, schema)

    def close(self, *, card: str = "") -> None:
        super().close()
        self._sink.close()

    def abort(self) -> None:
        super().abort()
        self._sink.close()


# hf: the folder's rows go through a ParquetWriter first, so its part is the same Arrow stream.
PART_WRITERS |= {"jsonl": JsonlWriter, "parquet": ArrowPartWriter, "hf": ArrowPartWriter}


STATISTICS_COLUMNS = {"item_id", "rule", "annotator_count", "agreement", "label"}

DICTIONARY_COLUMNS = {
    "rule",
    "external_id",
    "candidate_models",
    "candidate_recipes",
    "label",
    "labels",
    "ner_tags",
}


class HfWriter:
    """A `datasets` folder ({folder}/dataset_dict.json, {folder}/{split}/..., {folder}/README.md),
    packed into one archive at `path`.

    The split's rows are written as they come into the Arrow stream that becomes the split's one
    data file, the format `save_to_disk` writes (an ArrowPartWriter, which also appends another
    process's part). `datasets` then writes only the folder's metadata, for an empty split whose
    list of data files is pointed at that stream. Nothing maps or copies the rows again, so memory
    stays flat whatever the size; building the folder with Dataset.from_parquet and save_to_disk
    mapped every row (450 MB of RSS for 1M annotations, 240 MB for 100k)."""

    CARD = True
    DATA_FILE = "data-00000-of-00001.arrow"

    def __init__(self, path: Path, schema, *, split: str, folder: str, archive: str = "zip"):
        self.path = path
        self.schema = schema
        self.split = split
        self.folder = folder
        self.archive = archive
        self._work = Path(tempfile.mkdtemp(prefix=".hf-", dir=path.parent))
        self._rows = ArrowPartWriter(self._work / self.DATA_FILE, schema)

    def write(self, row: dict) -> None:
        self._rows.write(row)

    def append(self, part: Path, growing: Growing | None = None) -> None:
        """Adds the rows another process writes (an ArrowPartWriter's stream) after these."""
        self._rows.append(part, growing)

    def close(self, *, card: str = "") -> None:
        import datasets

        self._rows.close()
        datasets.disable_progress_bars()
        try:
            folder = self._work / self.folder
            empty = datasets.Dataset(datasets.table.InMemoryTable(self.schema.empty_table()))
            datasets.DatasetDict({self.split: empty}).save_to_disk(str(folder))
            split_folder = folder / self.split
            for written in split_folder.glob("*.arrow"):  # none for an empty split, as of datasets 5
                written.unlink()
            (self._work / self.DATA_FILE).replace(split_folder / self.DATA_FILE)
            state_path = split_folder / "state.json"
            state = json.loads(state_path.read_text())
            state["_data_files"] = [{"filename": self.DATA_FILE}]
            state_path.write_text(json.dumps(state, indent=2))
            (folder / "README.md").write_text(card, encoding="utf-8")
            _pack(folder, self.path, self.archive)
        finally:
            shutil.rmtree(self._work, ignore_errors=True)

    def abort(self) -> None:
        self._rows.abort()
        shutil.rmtree(self._work, ignore_errors=True)
        self.path.unlink(missing_ok=True)


def _pack(folder: Path, path: Path, archive: str) -> None:
    if archive == "tar":
        with tarfile.open(path, "w") as tar:
            tar.add(folder, arcname=folder.name)
        return
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                zf.write(file, arcname=str(file.relative_to(folder.parent)))


def writer_open(file_type: str, path: Path, schema, *, split: str, folder: str, archive: str | None):
    if file_type == "jsonl":
        return JsonlWriter(path, schema)
    if file_type == "parquet":
        return ParquetWriter(path, schema)
    return HfWriter(path, schema, split=split, folder=folder, archive=archive or "zip")
