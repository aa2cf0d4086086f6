"""The scoring functions on hand-made cases, and the incremental Scorer over hand-written files."""

from __future__ import annotations

import datetime as dt

from ragtrail.collector.flush import write_parquet_atomic
from ragtrail.collector.rows import to_arrow
from ragtrail.store import layout
from ragtrail.store.quality import Scorer, citation_accuracy, groundedness
from ragtrail.store.schema import empty_columns

CHUNK = "The Ember Mail API rate limit is 120 requests per minute per workspace."


def test_groundedness_is_sentence_level_and_checks_numbers_exactly():
    assert (
        groundedness("The Ember Mail API rate limit is 120 requests per minute. [kb-1]", [CHUNK]).score == 1.0
    )
    wrong_number = groundedness("The Ember Mail API rate limit is 600 requests per minute.", [CHUNK])
    assert (wrong_number.score, wrong_number.label) == (0.0, "ungrounded")
    half = groundedness(
        "The Ember Mail API rate limit is 120 requests per minute. Ember Mail is free forever!", [CHUNK]
    )
    assert (half.score, half.label) == (0.5, "partial")
    assert groundedness("Anything at all.", []).label == "no_context"
    assert groundedness("[kb-1]", [CHUNK]) is None  # nothing to score
    # Stated limit: lexical, not entailment — a paraphrase is unsupported.
    assert groundedness("Ember Mail allows two requests each second.", [CHUNK]).score == 0.0


def test_citation_accuracy():
    assert citation_accuracy(["a", "b"], ["a", "c"]).score == 0.5
    assert citation_accuracy([], ["a"]).label == "missing"
    assert citation_accuracy([], ["a"], required=False) is None


def _write(data, table: str, segment: int, rows: list[dict]) -> None:
    cols = empty_columns(table)
    for row in rows:
        for name in cols:
            cols[name].append(row.get(name))
    arrow = to_arrow(table, cols)
    date = rows[0]["time"].date()
    write_parquet_atomic(
        arrow, layout.partition_dir(data, table, date) / layout.segment_file_name(segment, "wt"), 1000
    )


def test_scorer_waits_for_root_and_answer_in_either_order_and_scores_once(tmp_path):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    scorer = Scorer(tmp_path)
    _write(
        tmp_path, "content", 1, [{"time": now, "trace_id": "t1", "role": "response", "seq": 0, "text": "Hi."}]
    )
    assert scorer.run_once().num_rows == 0  # answer without its root span: not yet
    _write(tmp_path, "spans", 2, [{"time": now, "trace_id": "t1", "span_id": "s1", "name": "root"}])
    scored = scorer.run_once()
    assert sorted(scored["metric"].to_pylist()) == ["citation_accuracy", "groundedness"]
    _write(tmp_path, "quality", 3, scored.to_pylist())
    assert scorer.run_once().num_rows == 0  # nothing new
    assert Scorer(tmp_path).run_once().num_rows == 0  # a restart rereads the files but never rescores
