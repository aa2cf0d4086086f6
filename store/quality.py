"""quality: ragtrail's own scores of an answer — citation accuracy and groundedness.

Both are deterministic functions of what the store already holds for a trace (no model, no network):

**citation_accuracy** = |cited ∩ seen| / |cited|, where *cited* is the set of doc ids in the trace's
``documents`` rows of stage ``cite`` (``ragtrail.citations``) and *seen* those of stages ``retrieve``
and ``rerank``. An answer that cites nothing scores 0 with label ``missing`` when citations are
required (``[quality] citations_required``, default true); otherwise it gets no row.

**groundedness** = the share of the answer's sentences that one retrieved chunk supports lexically.
The answer is the ``response`` text of the latest-starting span that carries one (ties: highest seq);
the chunks are the trace's ``document`` texts. Citation markers (``[doc-id]``) are dropped, the
answer is split into sentences at ``.``/``!``/``?`` + whitespace, and each sentence is reduced to its
lowercased word tokens minus a short stop-word list. A sentence is *supported* when a single chunk
contains every numeric token of the sentence and at least ``SUPPORT_THRESHOLD`` of its other tokens.
Sentences without content tokens are not counted; an answer with none gets no row; an answer with no
retrieved text scores 0 (label ``no_context``).

Limits, stated plainly: this is lexical overlap, not entailment. A paraphrase with other words counts
as unsupported; a sentence that reuses the chunk's words but negates them or swaps their relations
("A is larger than B") counts as supported. Numbers are checked exactly because a wrong value is the
most common and most harmful hallucination in support answers. Client evaluators (LLM judges, user
feedback) complement it; they arrive through ``collector.normalize.add_scores``.

``pending_scores`` reads the store for traces not yet scored by ragtrail that started within the
look-back (``[quality] lookback_hours``, default 48) and returns their rows; the collector appends them
through its WAL, so they are flushed, compacted and replayed like any row.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Container, Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ragtrail.store import db
from ragtrail.store.schema import QUALITY

EVALUATOR = "ragtrail"
SUPPORT_THRESHOLD = 0.8
_CITATION = re.compile(r"\[[^\[\]]*\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_TOKEN = re.compile(r"\w+(?:[.,:/-]\w+)*")
_STOP_TEXT = """a an and are as at be been being but by can could did do does for from had has have how i if in
    into is it its may might must not of on or our shall should so than that the their them then there
    these they this those to too under up upon was we were what when where which while who why will with
    would you your"""
STOP_WORDS = frozenset(_STOP_TEXT.split())


@dataclass(frozen=True)
class Score:
    metric: str
    score: float
    label: str
    explanation: str


def tokens(text: str) -> list[str]:
    """Content tokens: lowercased words and numbers, stop words removed."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOP_WORDS]


def sentences(answer: str) -> list[str]:
    text = _CITATION.sub(" ", answer)
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _supported(sentence: list[str], chunk: set[str]) -> bool:
    numbers = [t for t in sentence if any(ch.isdigit() for ch in t)]
    if any(n not in chunk for n in numbers):
        return False
    words = [t for t in sentence if t not in numbers]
    return not words or sum(w in chunk for w in words) / len(words) >= SUPPORT_THRESHOLD


def groundedness(answer: str, chunks: Iterable[str]) -> Score | None:
    scored = [t for t in (tokens(s) for s in sentences(answer)) if t]
    if not scored:
        return None
    chunk_sets = [set(tokens(c)) for c in chunks if c]
    if not chunk_sets:
        return Score("groundedness", 0.0, "no_context", f"0/{len(scored)} sentences: no retrieved text")
    supported = sum(any(_supported(s, c) for c in chunk_sets) for s in scored)
    value = supported / len(scored)
    label = "grounded" if supported == len(scored) else "ungrounded" if supported == 0 else "partial"
    return Score("groundedness", value, label, f"{supported}/{len(scored)} sentences supported")


def citation_accuracy(cited: Iterable[str], seen: Iterable[str], *, required: bool = True) -> Score | None:
    cited, seen = set(cited), set(seen)
    if not cited:
        return Score("citation_accuracy", 0.0, "missing", "no citations") if required else None
    ok = len(cited & seen)
    label = "accurate" if ok == len(cited) else "inaccurate"
    return Score("citation_accuracy", ok / len(cited), label, f"{ok}/{len(cited)} cited ids retrieved")


# --- over the store ----------------------------------------------------------------------------------

# Traces ragtrail has not scored whose root span has arrived (the root ends, and is exported, last)
# and that hold an answer.
# Only traces that started after a cutoff (``lookback``) are considered, so a pass reads the recent
# files' rows and only the footers of older ones (Parquet min/max statistics on time).
_PENDING_SQL = """
SELECT s.trace_id, min(s.time) AS time, any_value(s.service_name) FILTER (WHERE s.parent_span_id IS NULL)
FROM spans s
WHERE s.time >= $cutoff
  AND s.trace_id IN (SELECT trace_id FROM spans WHERE parent_span_id IS NULL AND time >= $cutoff)
  AND s.trace_id IN (SELECT trace_id FROM content WHERE role = 'response' AND time >= $cutoff)
  AND s.trace_id NOT IN (SELECT trace_id FROM quality
                         WHERE evaluator = 'ragtrail' AND trace_id IS NOT NULL AND time >= $cutoff)
GROUP BY s.trace_id ORDER BY 2 LIMIT $limit
"""


def pending_scores(
    data_dir: str | Path,
    *,
    skip: Container[str] = frozenset(),
    limit: int = 5000,
    citations_required: bool = True,
    lookback: dt.timedelta = dt.timedelta(hours=48),
) -> tuple[pa.Table, list[str]]:
    """Quality rows for up to ``limit`` complete, unscored traces (minus ``skip``, already queued),
    and the ids of the traces considered (some may yield no row)."""
    con = db.connect(data_dir, locked=False, memory_limit="1GB", threads=1)
    try:
        cutoff = dt.datetime.now(dt.UTC).replace(tzinfo=None) - lookback
        rows = con.execute(_PENDING_SQL, {"cutoff": cutoff, "limit": limit + len(skip)}).fetchall()  # type: ignore[arg-type]
        traces = [r for r in rows if r[0] not in skip]
        traces = traces[:limit]
        if not traces:
            return QUALITY.empty_table(), []
        con.execute("CREATE TEMP TABLE pick (trace_id VARCHAR)")
        con.executemany("INSERT INTO pick VALUES (?)", [(t[0],) for t in traces])
        answers = dict(
            con.execute(
                """SELECT trace_id, arg_max(text, (time, seq)) FROM content
                   WHERE role = 'response' AND trace_id IN (SELECT trace_id FROM pick) GROUP BY 1"""
            ).fetchall()
        )
        chunks: dict[str, list[str]] = {}
        for trace_id, text in con.execute(
            "SELECT trace_id, text FROM content WHERE role = 'document' AND trace_id IN (SELECT trace_id FROM pick)"
        ).fetchall():
            chunks.setdefault(trace_id, []).append(text)
        cited: dict[str, set] = {}
        seen: dict[str, set] = {}
        for trace_id, stage, doc_id in con.execute(
            """SELECT trace_id, stage, doc_id FROM documents
               WHERE doc_id IS NOT NULL AND trace_id IN (SELECT trace_id FROM pick)"""
        ).fetchall():
            (cited if stage == "cite" else seen).setdefault(trace_id, set()).add(doc_id)
    finally:
        con.close()
    out: dict[str, list] = {name: [] for name in QUALITY.names}
    for trace_id, time, service in traces:
        for score in (
            citation_accuracy(cited.get(trace_id, ()), seen.get(trace_id, ()), required=citations_required),
            groundedness(answers.get(trace_id) or "", chunks.get(trace_id, ())),
        ):
            if score is None:
                continue
            for key, value in (
                ("time", time), ("trace_id", trace_id), ("span_id", None), ("metric", score.metric),
                ("score", score.score), ("label", score.label), ("evaluator", EVALUATOR),
                ("explanation", score.explanation), ("service_name", service),
            ):  # fmt: skip
                out[key].append(value)
    return pa.Table.from_pydict(out, schema=QUALITY), [t[0] for t in traces]
