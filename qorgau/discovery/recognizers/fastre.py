"""Regular expressions that let ``re`` skip ahead in C: the same pattern, with its first-character set.

Why: CPython's ``re`` searches fast only when a pattern *begins* with a literal or a character class it can
test without entering the matcher (``_compiler._compile_info`` records it as the pattern's "prefix" or
"charset"). A pattern that begins with a look-behind (``(?<!\\w)ул\\.``), an optional group or a
case-insensitive word list gets neither, so ``search``/``finditer`` run the whole matcher at every
position of the text: 40-100 ns a character, the largest cost of the PERSON, ADDRESS and DATE_OF_BIRTH
recognizers. Rewriting those patterns by hand to start with a class would make them unreadable.

:func:`compile` keeps the pattern exactly as written and only adds what ``re`` leaves out: the set of
characters a match can start with, computed from the parsed pattern (zero-width assertions skipped,
optional items and alternatives followed, case-insensitive letters expanded to every character ``re``
folds to them). The compiled program is ``re``'s own; the matcher still checks every look-behind, so
the matches are the same as ``re.compile``'s — the search merely never starts at a character that cannot
begin a match. Tests compare both on the benchmark corpus and on random text.

:func:`alternatives` is the other half: a case-insensitive word list written as a trie of case-variant
classes, so that at a candidate position ``re`` tests characters instead of entering every word.

It uses ``re``'s internal compiler (``re._parser``, ``re._compiler``, ``_sre.compile``), the same in
Python 3.11-3.13, and checks itself at import on a probe pattern. If those internals ever change shape,
or a pattern's first characters cannot be bounded (``.``, a negated class first, a possibly empty
match), :func:`compile` returns plain ``re.compile(pattern)`` and :func:`alternatives` the plain
alternation: slower, never different.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

try:  # re's own compiler; present in CPython 3.11-3.13 with these names (tested on each)
    import _sre
    from re import _compiler, _constants, _parser
    from re._casefix import _EXTRA_CASES

    _C = _constants
    _AVAILABLE = hasattr(_compiler, "_code") and hasattr(_compiler, "_compile_info") and _sre.CODESIZE == 4
except ImportError:  # pragma: no cover - other Python implementations
    _AVAILABLE = False

_MAX_EXPANDED = 4096  # a case-insensitive range wider than this is not expanded (no optimisation)


class _Unbounded(Exception):
    """The pattern may start with any character (or match the empty string): nothing to gain."""


def compile(pattern: str, flags: int = 0) -> re.Pattern[str]:  # noqa: A001 - mirrors re.compile
    """``re.compile(pattern, flags)`` with a first-character set when ``re`` would have none."""
    if not _AVAILABLE:
        return re.compile(pattern, flags)
    try:
        compiled = _with_charset(pattern, flags)
    except _Unbounded:
        compiled = None
    except Exception:  # noqa: BLE001 - an internal API changed: fall back, never fail the import  # pragma: no cover
        compiled = None
    return compiled if compiled is not None else re.compile(pattern, flags)


def first_chars(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """The characters a match can start with, or None (no bound). Characters beyond the BMP, which
    :func:`compile` admits wholesale for a category (``\\d``, ``\\w``), show as one ``"U+10000-U+10FFFF"``.

    For tests and docs: shows what :func:`compile` hands to ``re``."""
    if not _AVAILABLE:
        return None
    parsed = _parser.parse(pattern, flags)
    try:
        items, nullable = _first(parsed.data, parsed.state.flags | flags)
    except _Unbounded:
        return None
    if nullable:
        return None
    out: set[str] = set()
    for op, av in items:
        if op is _C.LITERAL:
            out.add(chr(av))
        elif av[1] - av[0] > _MAX_EXPANDED:  # the non-BMP tail of a category
            out.add(f"U+{av[0]:04X}-U+{av[1]:04X}")
        else:
            out.update(chr(c) for c in range(av[0], av[1] + 1))
    return frozenset(out)


def _with_charset(pattern: str, flags: int) -> re.Pattern[str] | None:
    parsed = _parser.parse(pattern, flags)
    all_flags = parsed.state.flags | flags
    code = _compiler._code(parsed, flags)
    # code[0:5] = INFO, skip, mask, min, max; a prefix or charset already there is kept as re made it.
    if code[0] != _C.INFO or code[2] & (_C.SRE_INFO_PREFIX | _C.SRE_INFO_CHARSET) or code[3] == 0:
        return None
    items, nullable = _first(parsed.data, all_flags)
    if nullable or not items:
        return None
    charset, hascased = _compiler._optimize_charset(items)
    if hascased:  # pragma: no cover - no fixup given, so re never reports cased items
        return None
    info = [_C.INFO, 0, code[2] | _C.SRE_INFO_CHARSET, code[3], code[4]]
    _compiler._compile_charset(charset, all_flags, info)
    info[1] = len(info) - 1
    code = info + code[1 + code[1]:]
    groupindex = parsed.state.groupdict
    indexgroup = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    return _sre.compile(pattern, all_flags, code, parsed.state.groups - 1, groupindex, tuple(indexgroup))


def _first(data: Iterable, flags: int) -> tuple[list, bool]:
    """(charset items a match of the sequence ``data`` can start with, whether it can match empty)."""
    items: list = []
    for op, av in data:
        if op is _C.AT or op is _C.ASSERT or op is _C.ASSERT_NOT:
            continue  # zero-width: constrains the match, never consumes its first character
        if op is _C.LITERAL:
            items += _literal(av, flags)
            return items, False
        if op is _C.IN:
            items += _charset(av, flags)
            return items, False
        if op is _C.SUBPATTERN:
            _group, add, remove, sub = av
            sub_items, nullable = _first(sub.data, (flags | add) & ~remove)
        elif op is _C.ATOMIC_GROUP:
            sub_items, nullable = _first(av.data, flags)
        elif op is _C.BRANCH:
            sub_items, nullable = [], False
            for alternative in av[1]:
                alt_items, alt_nullable = _first(alternative.data, flags)
                sub_items += alt_items
                nullable = nullable or alt_nullable
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT, _C.POSSESSIVE_REPEAT):
            low, _high, sub = av
            sub_items, nullable = _first(sub.data, flags)
            nullable = nullable or low == 0
        else:  # ANY, NOT_LITERAL, GROUPREF, GROUPREF_EXISTS, CATEGORY outside a class …
            raise _Unbounded
        items += sub_items
        if not nullable:
            return items, False
    return items, True


def _literal(code: int, flags: int) -> list:
    if not flags & _C.SRE_FLAG_IGNORECASE:
        return [(_C.LITERAL, code)]
    return [(_C.LITERAL, c) for c in _case_variants(code)]


def _charset(items: list, flags: int) -> list:
    ignore_case = flags & _C.SRE_FLAG_IGNORECASE
    out: list = []
    for op, av in items:
        if op is _C.NEGATE:
            raise _Unbounded
        if op is _C.LITERAL:
            out += _literal(av, flags)
        elif op is _C.RANGE:
            if not ignore_case:
                out.append((op, av))
            elif av[1] - av[0] > _MAX_EXPANDED:
                raise _Unbounded
            else:
                out += [(_C.LITERAL, c) for code in range(av[0], av[1] + 1) for c in _case_variants(code)]
        elif op is _C.CATEGORY:
            out += _category(av, ignore_case)
        else:  # anything unforeseen: do not guess
            raise _Unbounded
    return out


# re's Unicode categories, as the str predicates re itself uses (Py_UNICODE_ISDECIMAL, ISALNUM or "_",
# ISSPACE); the negated ones are their complements.
_CATEGORY_TESTS = {
    "CATEGORY_DIGIT": str.isdecimal, "CATEGORY_WORD": lambda c: c.isalnum() or c == "_",
    "CATEGORY_SPACE": str.isspace,
}


def _category(category: object, ignore_case: bool) -> list:
    """A category (``\\d``, ``\\w``, ``\\s`` and their negations) as explicit BMP characters plus everything
    beyond the BMP: ``re`` then tests one bitmap per character instead of calling a Unicode predicate.
    Under IGNORECASE ``re`` tests the lower-case form, so characters whose lower case is in are in too."""
    return [(_C.LITERAL, c) for c in _category_codes(str(category), ignore_case)] + [(_C.RANGE, (0x10000, 0x10FFFF))]


@functools.lru_cache(maxsize=16)
def _category_codes(name: str, ignore_case: bool) -> tuple[int, ...]:
    negated = name.startswith("CATEGORY_NOT_")
    base = name.replace("CATEGORY_NOT_", "CATEGORY_")
    test = _CATEGORY_TESTS.get(base)
    if test is None:  # line breaks and the like: never first characters in our patterns
        raise _Unbounded
    tolower = _sre.unicode_tolower
    codes = []
    for code in range(0x10000):
        hit = test(chr(code)) != negated
        if not hit and ignore_case:
            hit = test(chr(tolower(code))) != negated
        if hit:
            codes.append(code)
    return tuple(codes)


def _case_variants(code: int) -> tuple[int, ...]:
    """Every character ``re`` (Unicode, IGNORECASE) can match for the pattern character ``code``:
    those whose lower case is ``code``'s lower case or one of its extra cases (``s``/``ſ``, ``k``/``K``)."""
    if code > 0xFFFF:
        raise _Unbounded
    lower = _sre.unicode_tolower(code)
    targets = {lower, *_EXTRA_CASES.get(lower, ())}
    by_lower = _lower_to_chars()
    return tuple(sorted({code, *targets, *(c for t in targets for c in by_lower.get(t, ()))}))


@functools.lru_cache(maxsize=1)
def _lower_to_chars() -> dict[int, tuple[int, ...]]:
    """For each lower-case BMP character, the BMP characters whose lower case it is (built once, ~10 ms)."""
    table: dict[int, list[int]] = {}
    for code, lower in enumerate(map(_sre.unicode_tolower, range(0x10000))):
        if lower != code:  # no character outside the BMP lower-cases into it (checked by a test)
            table.setdefault(lower, []).append(code)
    return {k: tuple(v) for k, v in table.items()}


_QUANTIFIERS = frozenset("?*+{")
_SPECIAL = frozenset("\\()[].^$|?*+{}")


def alternatives(words: Iterable[str], *, ignore_case: bool = True) -> str:
    """The regex ``(?i:w1|w2|…)`` written as a trie so that ``re`` tests characters without entering
    alternatives: alternatives are grouped by their first character, each group starts with a class of
    that character's case variants, and a group whose alternatives all go on with a plain character is
    grouped again (``[уУ](?:[лЛ](?i:\\.|ица|ице))|[пП](?:[рР](?i:\\.|-т))``).

    Same matches as the plain alternation: within a group the alternatives keep their order, and
    alternatives in different groups cannot match at the same position (they differ in a character both
    must match). Every alternative must start with a plain character that has no quantifier (``ул\\.``,
    not ``(?:у)л`` or ``у?л``); ``words`` are regex sources, not escaped text. An alternative written
    ``(?-i:г\\.)`` stays case-sensitive, as it would inside ``(?i:…)``.
    """
    words = list(words)
    if not _AVAILABLE:  # no case-variant table: the plain alternation, as re would take it
        return ("(?i:" if ignore_case else "(?:") + "|".join(words) + ")"
    items: list[tuple[str, bool]] = []
    for word in words:
        exact = word.startswith("(?-i:") and word.endswith(")") and ignore_case
        body = word[5:-1] if exact else word
        if _lead(body) is None or (exact and ("|" in body or "(" in body)):
            raise ValueError(f"alternative {word!r} must start with a plain character")
        items.append((body, exact))
    return _trie(items, ignore_case, top=True)


_BUCKET = 6
_MAX_DEPTH = 4


def _lead(body: str) -> tuple[str, int] | None:
    """(first character, its length in the source) if ``body`` starts with a plain or escaped punctuation
    character without a quantifier (``re.escape("+7") == "\\+7"``), else None."""
    size = 2 if body[:1] == "\\" and len(body) > 1 and not body[1].isalnum() else 1
    if not body or (size == 1 and body[0] in _SPECIAL) or body[size:size + 1] in _QUANTIFIERS:
        return None
    return body[size - 1], size


def _trie(items: list[tuple[str, bool]], ignore_case: bool, top: bool = False, depth: int = 0) -> str:
    groups: dict[tuple[int, ...], list[tuple[str, bool]]] = {}
    for body, exact in items:
        char, size = _lead(body)  # type: ignore[misc]
        key = _case_variants(ord(char)) if ignore_case else (ord(char),)
        if exact:  # the group's class matches any case; a case-sensitive alternative re-checks its character
            groups.setdefault(key, []).append((f"(?-i:(?<={re.escape(char)}){body[size:]})", False))
        else:
            groups.setdefault(key, []).append((body[size:], False))
    flag = "(?i:" if ignore_case else "(?:"
    parts = []
    for key, rests in groups.items():
        lead = "[" + "".join(re.escape(chr(c)) for c in key) + "]" if len(key) > 1 else re.escape(chr(key[0]))
        if len(rests) > 1 and depth < _MAX_DEPTH and all(_lead(rest) is not None for rest, _ in rests):
            parts.append(lead + _trie(rests, ignore_case, depth=depth + 1))
        else:
            parts.append(lead + flag + "|".join(rest for rest, _ in rests) + ")")
    if len(parts) <= _BUCKET:
        return "(?:" + "|".join(parts) + ")"
    # Many groups: re would test each group's class in turn at every candidate position. A look-ahead
    # class per bucket of groups first narrows it to one bucket (groups never share a first character,
    # so their order does not matter).
    keys = list(groups)
    size = max(_BUCKET, round(len(parts) ** 0.5))
    buckets = []
    for i in range(0, len(parts), size):
        chars = "".join(re.escape(chr(c)) for key in keys[i:i + size] for c in key)
        buckets.append(f"(?=[{chars}])(?:" + "|".join(parts[i:i + size]) + ")")
    return "(?:" + "|".join(buckets) + ")"


def _probe() -> bool:
    """A self-check at import: if ``re``'s program layout ever differs from what :func:`_with_charset`
    expects, the optimised pattern would not match like ``re`` — then every pattern is compiled plainly."""
    source = r"(?<!\w)(?i:ул\.|st)\s*(?P<n>\d{1,3})|(?<![\w.])\d{2}\.\d{2}"
    text = "ул. 12, St 7, стул. 5 ſt 3 01.02 x01.02 Ул.9"
    try:
        optimised = _with_charset(source, 0)
    except Exception:  # noqa: BLE001  # pragma: no cover
        return False
    plain = re.compile(source)
    return optimised is not None and [(m.span(), m.groups()) for m in optimised.finditer(text)] == \
        [(m.span(), m.groups()) for m in plain.finditer(text)]


_AVAILABLE = _AVAILABLE and _probe()
