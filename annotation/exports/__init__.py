"""The export layer: training and eval files that libraries load as-is.

- spec.py: the format, file type, filters and options an export asks for, validated.
- rules.py: small named rules (one function each) that turn review outcomes into rows.
- rows.py: the formats, and rows streamed from the database (server-side cursors), with provenance.
- writers.py: one writer per file type (jsonl, parquet, a packed `datasets` folder).
- card.py: the dataset card of a `datasets` export.
- selectors.py: reads of exports a user may see.

Writes (create, run) live in annotation/services/exports.py; the Celery task in annotation/tasks.py.
"""
