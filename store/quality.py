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

``Scorer`` finds the traces to score incrementally — root spans and answers in Parquet files it has not
read yet, within a look-back (``[quality] lookback_hours``, default 48) — and returns their rows; the collector
appends them through its WAL, so they are flushed, compacted and replayed like any row.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Container, Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from ragtrail.store import db, layout
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

Marks = dict[tuple[str, str], int]  # (table, writer) -> highest WAL segment whose file was read


def new_candidates(data_dir: str | Path, marks: Marks, cutoff: dt.datetime) -> tuple[set[str], Marks, bool]:
    """Trace ids with a root span (spans) or an answer (content) in files of WAL segments past ``marks``.

    The flusher publishes one table's segment files in segment order, so a mark per table and writer
    is enough. Returns the ids, the new marks, and whether every listed file could be read (if not,
    e.g. compacted away meanwhile, keep the old marks and read its replacement next pass)."""
    found: set[str] = set()
    high = dict(marks)
    for table, column, value in (("spans", "parent_span_id", None), ("content", "role", "response")):
        paths = []
        root = layout.table_dir(Path(data_dir), table)
        for path in sorted(root.glob(f"date=*/*{layout.PARQUET}")) if root.is_dir() else []:
            seg_range, writer = layout.segment_range(path.name), layout.file_writer(path.name)
            date = layout.partition_date(path.parent)
            if seg_range is None or writer is None or seg_range[1] <= marks.get((table, writer), 0):
                continue
            high[(table, writer)] = max(high.get((table, writer), 0), seg_range[1])
            if date is None or date >= cutoff.date():
                paths.append(str(path))
        if not paths:
            continue
        match = ds.field(column).is_null() if value is None else ds.field(column) == value
        try:
            t = ds.dataset(paths, format="parquet").to_table(
                columns=["trace_id"],
                filter=match & (ds.field("time") >= pa.scalar(cutoff, pa.timestamp("us"))),
            )
        except (FileNotFoundError, pa.ArrowException):  # a file compacted away meanwhile
            return found, marks, False
        found.update(t["trace_id"].to_pylist())
    found.discard(None)
    return found, high, True


def score_traces(
    data_dir: str | Path, trace_ids: set[str], since: dt.datetime, *, citations_required: bool = True
) -> pa.Table:
    """Quality rows for those of ``trace_ids`` (started at or after ``since``) that have their root span
    and an answer in the store and no ragtrail score yet."""
    if not trace_ids:
        return QUALITY.empty_table()
    con = db.connect(data_dir, locked=False, memory_limit="1GB", threads=1)
    try:
        con.register("pick", pa.table({"trace_id": pa.array(sorted(trace_ids), pa.string())}))
        picked = "time >= $since AND trace_id IN (SELECT trace_id FROM pick)"

        def rows(sql: str) -> list[tuple]:
            return con.execute(sql.format(picked=picked), {"since": since}).fetchall()

        roots = {t: (time, svc) for t, time, svc in rows(
            "SELECT trace_id, min(time), any_value(service_name) FILTER (WHERE parent_span_id IS NULL) "
            "FROM spans WHERE {picked} GROUP BY 1 HAVING bool_or(parent_span_id IS NULL)"
        )}  # fmt: skip
        done = {
            r[0]
            for r in rows(
                f"SELECT DISTINCT trace_id FROM quality WHERE evaluator = '{EVALUATOR}' AND {{picked}}"
            )
        }
        answers = dict(rows(
            "SELECT trace_id, arg_max(text, (time, seq)) FROM content WHERE role = 'response' AND {picked} GROUP BY 1"
        ))  # fmt: skip
        chunks: dict[str, list[str]] = {}
        for trace_id, text in rows("SELECT trace_id, text FROM content WHERE role = 'document' AND {picked}"):
            chunks.setdefault(trace_id, []).append(text)
        cited: dict[str, set] = {}
        seen: dict[str, set] = {}
        for trace_id, stage, doc_id in rows(
            "SELECT trace_id, stage, doc_id FROM documents WHERE doc_id IS NOT NULL AND {picked}"
        ):
            (cited if stage == "cite" else seen).setdefault(trace_id, set()).add(doc_id)
    finally:
        con.close()
    out: dict[str, list] = {name: [] for name in QUALITY.names}
    for trace_id, (time, service) in sorted(roots.items(), key=lambda kv: (kv[1][0], kv[0])):
        if trace_id in done or trace_id not in answers:
            continue
        for score in (
            citation_accuracy(cited.get(trace_id, ()), seen.get(trace_id, ()), required=citations_required),
            groundedness(answers[trace_id] or "", chunks.get(trace_id, ())),
        ):
            if score is None:
                continue
            for key, value in (
                ("time", time), ("trace_id", trace_id), ("span_id", None), ("metric", score.metric),
                ("score", score.score), ("label", score.label), ("evaluator", EVALUATOR),
                ("explanation", score.explanation), ("service_name", service),
            ):  # fmt: skip
                out[key].append(value)
    return pa.Table.from_pydict(out, schema=QUALITY)


class Scorer:
    """Incremental scoring. Each pass reads only files of WAL segments it has not read (by segment
    number per table and writer, from the file names) for traces whose root span or answer just
    arrived, and scores those that now have both. So a trace is scored once its root and its answer
    are both stored, in whichever order they come; documents arriving after that are not rescored.
    After a restart the first pass reads every file within the look-back; stored scores are never
    written twice."""

    def __init__(
        self, data_dir: str | Path, *, citations_required: bool = True,
        lookback: dt.timedelta = dt.timedelta(hours=48),
    ):  # fmt: skip
        self.data_dir = Path(data_dir)
        self.citations_required = citations_required
        self.lookback = lookback
        self.marks: Marks = {}

    def run_once(self, skip: Container[str] = frozenset()) -> pa.Table:
        """The rows of one pass (hand their trace ids back as ``skip`` until they are stored)."""
        cutoff = dt.datetime.now(dt.UTC).replace(tzinfo=None) - self.lookback
        found, marks, complete = new_candidates(self.data_dir, self.marks, cutoff)
        table = score_traces(
            self.data_dir,
            {t for t in found if t not in skip},
            cutoff,
            citations_required=self.citations_required,
        )
        if complete:
            self.marks = marks
        return table
