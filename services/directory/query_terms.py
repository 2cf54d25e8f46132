"""What a search query asks for, the way people type it: concepts, synonyms, categories, ages.

A counsellor types "mental health counseling for teens" or "consejería para adolescentes",
not the words a 211 wrote in its descriptions. :func:`understand` turns the text into

* **concepts** that must match (each an alternative of phrases: the words typed, their
  synonyms and translations from ``data/search_synonyms.csv`` and any operator's extra file,
  and the taxonomy terms the words name, each matching the services filed under the term
  or any term below it);
* **age concepts** ("kids", "teens", "seniors", "adolescentes"): an age range that filters
  like the age filter (a service without ages passes), and a preference for services that
  say so, never a word every result must contain;
* **stop words** dropped ("for", "the", "help with", "para", "de"), unless nothing else is left.

Phrases are matched longest first on accent-free, lower-case words with a light plural
rule, so "consejería", "consejeria" and "Consejerias" are one word. Only letters and digits
survive (:data:`WORDS`): quotes, brackets, ``*``, ``^``, ``:``, ``-`` and the operators
``AND``/``OR``/``NEAR`` of either full-text engine are never syntax, only text or nothing.

Example::

    >>> plan = understand("Consejería para adolescentes", synonyms(), tree)
    >>> [c.phrases for c in plan.concepts]
    [('consejeria', 'counseling', 'counselling', 'counselor', 'counsellor', 'therapy', ...)]
    >>> plan.ages, plan.dropped
    ((13, 19), ['para'])
"""
from __future__ import annotations

import csv
import functools
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

SYNONYMS_FILE = Path(__file__).resolve().parent / "data" / "search_synonyms.csv"
# Letters and digits only: every other character (FTS syntax included) separates words.
WORDS = re.compile(r"[^\W_]+", re.UNICODE)
MAX_WORDS = 24
MAX_PHRASE_WORDS = 6
STOP_WORDS = frozenset("""
a an the for to of in on at by with and or but not no my our your their his her me i we you us them
who what where which that this these those is are be can could would should will near nearby around
help helping helps need needs needed needing looking find finding get getting want some any all
services service program programs resources resource information info options place places
de del la el los las un una unos unas para por con sin y o u en mi mis su sus que al lo busco
necesito ayuda ayudar servicios servicio programa programas recursos informacion
""".split())
# Words that a plural rule would mangle.
KEEP_S = frozenset({"bus", "gas", "aids", "hiv", "esl", "ess", "services", "tennis", "glass", "class", "plus", "tus"})


def fold(text: str) -> str:
    """Lower case without accents: ``fold("Consejería")`` -> ``"consejeria"``."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def words_of(text: str) -> list[str]:
    """The folded words of ``text`` (letters and digits; at most :data:`MAX_WORDS`)."""
    return WORDS.findall(fold(text))[:MAX_WORDS]


def key_word(word: str) -> str:
    """A word reduced for matching phrases: a plural ``s``/``es`` off ("clinics" -> "clinic")."""
    if len(word) > 3 and word not in KEEP_S:
        if word.endswith("ies") and len(word) > 4:
            return word[:-3] + "y"
        if word.endswith("s") and not word.endswith("ss"):
            return word[:-1]
    return word


def phrase_key(words) -> str:
    return " ".join(key_word(w) for w in words)


def term_keys(name: str) -> list[str]:
    """The keys a taxonomy term's name is found by: "English as a Second Language (ESL)" ->
    ["english as a second language", "esl"]; "Food & Nutrition" -> ["food and nutrition"]."""
    name = (name or "").replace("&", " and ")
    inner = re.findall(r"\(([^)]*)\)", name)
    outer = re.sub(r"\([^)]*\)", " ", name)
    keys = [phrase_key(words_of(outer))]
    for part in inner:
        words = words_of(part)
        if words and not any(w.isdigit() for w in words):
            keys.append(phrase_key(words))
    return [k for k in keys if k]


@dataclass
class SynonymGroup:
    """One row group of the synonym file: a concept, its phrases (folded) and, for age words, the ages."""

    concept: str
    phrases: list[str] = field(default_factory=list)
    minimum_age: int | None = None
    maximum_age: int | None = None

    @property
    def is_age(self) -> bool:
        return self.minimum_age is not None or self.maximum_age is not None


@dataclass(frozen=True)
class Synonyms:
    """The synonym groups and the index from a phrase's key to the groups it belongs to."""

    groups: dict
    by_key: dict

    @property
    def known_words(self) -> frozenset:
        return frozenset(w for key in self.by_key for w in key.split())


def _age(value) -> int | None:
    value = (value or "").strip()
    return int(value) if value else None


def read_synonyms(paths) -> Synonyms:
    """Merge synonym files (columns ``concept, language, phrase, minimum_age, maximum_age``):
    rows naming the same concept are one group, in any file."""
    groups: dict[str, SynonymGroup] = {}
    for path in paths:
        if not Path(path).is_file():
            raise ValueError(f"search synonyms file {path} does not exist (WEINTERVENE_DIRECTORY_SEARCH_SYNONYMS_FILE)")
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=2):
                concept = fold((row.get("concept") or "").strip())
                phrase = " ".join(words_of(row.get("phrase") or ""))
                if not concept or not phrase:
                    raise ValueError(f"{path}: row {number} needs a concept and a phrase")
                group = groups.setdefault(concept, SynonymGroup(concept))
                if phrase not in group.phrases:
                    group.phrases.append(phrase)
                try:
                    low, high = _age(row.get("minimum_age")), _age(row.get("maximum_age"))
                except ValueError:
                    raise ValueError(f"{path}: row {number}: ages must be whole numbers") from None
                if low is not None:
                    group.minimum_age = low if group.minimum_age is None else min(group.minimum_age, low)
                if high is not None:
                    group.maximum_age = high if group.maximum_age is None else max(group.maximum_age, high)
    by_key: dict[str, list[str]] = {}
    for name, group in groups.items():
        for phrase in [name] + group.phrases:
            names = by_key.setdefault(phrase_key(phrase.split()), [])
            if name not in names:
                names.append(name)
    return Synonyms(groups, by_key)


@functools.lru_cache(maxsize=8)
def _cached(paths: tuple) -> Synonyms:
    return read_synonyms(paths)


def synonyms(extra: str | None = None) -> Synonyms:
    """The shipped synonym list, extended by the operator's file ``extra`` (if any)."""
    paths = (str(SYNONYMS_FILE),) + ((str(extra),) if extra else ())
    return _cached(paths)


@dataclass(frozen=True)
class Concept:
    """One thing the query asks for: any of ``phrases`` in the text, or any of ``term_ids``
    (with the terms below them) among the service's categories."""

    typed: str
    phrases: tuple
    term_ids: tuple = ()


@dataclass
class QueryPlan:
    """The understood query: ``concepts`` to match, an age range, the age words (a ranking
    preference) and the stop words dropped."""

    concepts: list
    ages: tuple | None = None
    age_concepts: list = field(default_factory=list)
    dropped: list = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.concepts


def _term_index(tree) -> dict:
    """Taxonomy term keys -> term ids, every taxonomy (cached on the tree)."""
    index = getattr(tree, "_name_keys", None)
    if index is None:
        index = {}
        for term in tree.terms.values():
            for key in term_keys(term["name"]):
                index.setdefault(key, []).append(term["id"])
        tree._name_keys = index
    return index


def _without_subsumed(phrases: list) -> list:
    """The phrases without those containing another of them ("mental health care" goes when
    "mental health" is there: every text with the first has the second), so the index reads
    fewer phrases for the same matches.

    >>> _without_subsumed(["dental care", "dental", "dentist"])
    ['dental', 'dentist']
    """
    kept = []
    for phrase in phrases:
        padded = f" {phrase} "
        if any(other != phrase and f" {other} " in padded for other in phrases):
            continue
        kept.append(phrase)
    return kept


def understand(q: str, syn: Synonyms, tree=None) -> QueryPlan:
    """Concepts, ages and dropped words of the query text ``q`` (see the module docstring)."""
    return understand_words(words_of(q), syn, tree)


def understand_words(words: list, syn: Synonyms, tree=None, phrases: bool = True) -> QueryPlan:
    """:func:`understand` on folded words (``phrases`` False: each word on its own)."""
    keys = [key_word(w) for w in words]
    terms = _term_index(tree) if tree is not None else {}
    concepts, age_concepts, dropped = [], [], []
    ranges = []
    i = 0
    while i < len(words):
        match = None
        for n in range(min(MAX_PHRASE_WORDS if phrases else 1, len(words) - i), 0, -1):
            key = " ".join(keys[i:i + n])
            if n == 1 and words[i] in STOP_WORDS:
                break
            if key in syn.by_key or key in terms:
                match = (n, key)
                break
        if match is None:
            if words[i] in STOP_WORDS:
                dropped.append(words[i])
            else:
                concepts.append(Concept(words[i], (words[i],)))
            i += 1
            continue
        n, key = match
        typed = " ".join(words[i:i + n])
        phrases, term_ids, is_age = [typed], [], False
        for name in syn.by_key.get(key, []):
            group = syn.groups[name]
            phrases += [p for p in group.phrases if p not in phrases]
            if group.is_age:
                is_age = True
                ranges.append((group.minimum_age or 0, group.maximum_age))
        for phrase in phrases:
            for term in terms.get(phrase_key(phrase.split()), []):
                if term not in term_ids:
                    term_ids.append(term)
        concept = Concept(typed, tuple(_without_subsumed(phrases)), tuple(term_ids))
        (age_concepts if is_age else concepts).append(concept)
        i += n
    if not concepts and age_concepts:
        # "teens" alone: the age words are the query.
        concepts, age_concepts = age_concepts, []
    if not concepts and dropped:
        # Only stop words ("help"): search them rather than nothing.
        concepts = [Concept(w, (w,)) for w in dropped]
        dropped = []
    ages = None
    if ranges:
        # Several age words widen the range ("kids and teens": 3 to 19); no upper bound wins.
        ages = (min(r[0] for r in ranges), None if any(r[1] is None for r in ranges) else max(r[1] for r in ranges))
    return QueryPlan(concepts, ages, age_concepts, dropped)


def loosened(plan: QueryPlan, syn: Synonyms, tree=None) -> QueryPlan:
    """The plan for a relaxed search: its concepts plus, for each concept of several words, each
    word on its own ("free meals", a category no service is filed under, also as "free" and
    "meals", which the synonyms know as food), so partial matches can be ranked by coverage.

    >>> [c.typed for c in loosened(understand("bus passes", syn, tree), syn, tree).concepts]
    ['bus passes', 'bus', 'passes']
    """
    concepts, seen = list(plan.concepts), {c.typed for c in plan.concepts}
    for concept in plan.concepts:
        words = concept.typed.split()
        if len(words) < 2:
            continue
        for part in understand_words(words, syn, tree, phrases=False).concepts:
            if part.typed not in seen:
                seen.add(part.typed)
                concepts.append(part)
    return QueryPlan(concepts, plan.ages, plan.age_concepts, plan.dropped)
