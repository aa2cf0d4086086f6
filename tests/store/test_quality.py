"""Quality on a seeded demo run: ragtrail's scores per trace equal values recomputed here from the raw
Parquet files, independently of store/quality.py (only its documented constants are shared)."""

from __future__ import annotations

import re
from collections import defaultdict

import pyarrow.dataset as ds

from ragtrail.store.quality import STOP_WORDS, SUPPORT_THRESHOLD
from tests.store.conftest import ANSWERED, SCORED


def _rows(data_dir, table: str, columns: list[str]) -> list[dict]:
    dataset = ds.dataset(data_dir / "tables" / table, format="parquet", partitioning="hive")
    return dataset.to_table(columns=columns).to_pylist()


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"\w+(?:[.,:/-]\w+)*", text.lower()) if w not in STOP_WORDS]


def _expected_groundedness(answer: str, chunks: list[str]) -> float | None:
    answer = re.sub(r"\[[^\[\]]*\]", " ", answer)
    claims = [_words(s) for s in re.split(r"(?<=[.!?])\s+", answer)]
    claims = [c for c in claims if c]
    if not claims:
        return None
    bags = [set(_words(c)) for c in chunks]
    ok = 0
    for claim in claims:
        for bag in bags:
            numbers = [w for w in claim if re.search(r"\d", w)]
            rest = [w for w in claim if not re.search(r"\d", w)]
            if all(n in bag for n in numbers) and (
                not rest or len([w for w in rest if w in bag]) >= SUPPORT_THRESHOLD * len(rest)
            ):
                ok += 1
                break
    return ok / len(claims)


def test_scores_match_an_independent_recomputation(audit_store):
    audit_store.wait_for(SCORED, audit_store.scalar(ANSWERED))  # other modules may have sent traces
    data = audit_store.data_dir
    content = _rows(data, "content", ["trace_id", "time", "role", "seq", "text"])
    answers: dict[str, tuple] = {}
    chunks: dict[str, list[str]] = defaultdict(list)
    for r in content:
        if r["role"] == "response":
            key = (r["time"], r["seq"])
            if r["trace_id"] not in answers or key > answers[r["trace_id"]][0]:
                answers[r["trace_id"]] = (key, r["text"])
        elif r["role"] == "document":
            chunks[r["trace_id"]].append(r["text"])
    cited, seen = defaultdict(set), defaultdict(set)
    for r in _rows(data, "documents", ["trace_id", "stage", "doc_id"]):
        (cited if r["stage"] == "cite" else seen)[r["trace_id"]].add(r["doc_id"])

    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in _rows(data, "quality", ["trace_id", "metric", "score", "evaluator"]):
        if r["evaluator"] == "ragtrail":
            scores[(r["trace_id"], r["metric"])].append(r["score"])
    assert answers and all(len(v) == 1 for v in scores.values()), "one score per trace and metric"

    checked = defaultdict(int)
    for trace_id, (_, answer) in answers.items():
        c, s = cited[trace_id], seen[trace_id]
        expected_citation = len(c & s) / len(c) if c else 0.0  # citations are required by default
        assert scores[(trace_id, "citation_accuracy")] == [expected_citation], trace_id
        expected_ground = _expected_groundedness(answer, chunks[trace_id])
        if expected_ground is None:
            assert (trace_id, "groundedness") not in scores
        else:
            assert scores[(trace_id, "groundedness")] == [expected_ground], (trace_id, answer)
        checked[(expected_citation, expected_ground)] += 1
    # The seeded run exercises every case: accurate and wrong citations, grounded and wrong answers.
    assert checked[(1.0, 1.0)] > 100
    assert any(c == 0.0 for c, _ in checked) and any(g == 0.0 for _, g in checked)


def test_client_scores_and_guardrail_verdicts_are_quality_rows(audit_store):
    rows = dict(
        audit_store.sql(
            "SELECT metric || '/' || evaluator, count(*) FROM quality WHERE evaluator <> 'ragtrail' GROUP BY 1"
        )
    )
    assert rows.get("user_feedback/user", 0) > 10  # gen_ai.evaluation.result log events
    assert rows.get("guardrail/guardrail.input", 0) > 100
    refused = audit_store.scalar("SELECT count(*) FROM audit WHERE guardrail = 'refused'")
    assert refused > 0
    # A refused request cites nothing.
    assert (
        audit_store.scalar(
            "SELECT count(*) FROM audit WHERE guardrail = 'refused' AND len(cited_doc_ids) > 0"
        )
        == 0
    )


def test_audit_view_has_one_row_per_answered_request(audit_store):
    assert audit_store.scalar("SELECT count(*) - count(DISTINCT trace_id) FROM audit") == 0
    assert audit_store.scalar("SELECT count(*) FROM audit") == audit_store.scalar(
        "SELECT count(DISTINCT trace_id) FROM content WHERE role IN ('prompt', 'response')"
    )
    row = audit_store.sql(
        "SELECT user_id, question, answer, cited_doc_ids, retrieved_doc_ids, groundedness, citation_accuracy "
        "FROM audit WHERE len(cited_doc_ids) > 0 AND citation_accuracy = 1 LIMIT 1"
    )[0]
    assert row[0].startswith("u_") and row[1] and row[2]
    assert set(row[3]) <= set(row[4])
    assert audit_store.scalar("SELECT sum(pii_redacted) FROM audit") > 0
