"""The columns of every table crowdloop stores or exchanges, each named once.

===============  ==========================================================  ==============================
table            columns                                                     where
===============  ==========================================================  ==============================
examples         example_id, text, split (``pool`` | ``test``), gold          data/examples.parquet
annotations      example_id, annotator_id, label, round, source, time        data/annotations/*.parquet
answers          example_id, annotator_id, label                             what comes back; simulators
picks            example_id, suggested_annotator, score, cost                what select chooses
batch            example_id, text, suggested_annotator, score, cost, label   data/rounds/NNN/batch.csv
===============  ==========================================================  ==============================

Labels are class names in every table; only :mod:`crowdloop.tasks.round_data` turns
them into indices for the steps and back. ``pool`` is the split of examples that may
be annotated (labeled or not); ``test`` is the gold split, never annotated.
"""

from __future__ import annotations

EXAMPLE_COLUMNS = ("example_id", "text", "split", "gold")
ANNOTATION_COLUMNS = ("example_id", "annotator_id", "label", "round", "source", "time")
ANSWER_COLUMNS = ("example_id", "annotator_id", "label")
PICK_COLUMNS = ("example_id", "suggested_annotator", "score", "cost")
BATCH_COLUMNS = ("example_id", "text", "suggested_annotator", "score", "cost", "label")
SPLITS = ("pool", "test")
# An example made of several texts (premise and hypothesis, a conversation's turns) joins
# them with this; the head backend's ``model.head.pairs`` splits a pair back on it.
TEXT_SEP = " [SEP] "
# A batch exported for Label Studio (`crowdloop export --format`): each form and its file's extension.
EXPORT_FORMATS = {"label-studio": "json", "label-studio-csv": "csv", "label-studio-jsonl": "jsonl"}
