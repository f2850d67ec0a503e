"""Fingerprint the provider's documentation and say what changed in contract terms.

Two kinds of document:

- ``openapi`` (JSON or YAML): only the chat completions operation the contract uses (its
  endpoint path and method) is kept, as a *view*: the request's required fields and field
  types, the success response's fields and types, and the error statuses with the error
  codes and types they document. ``$ref`` is resolved (local references; cycles cut).
  Descriptions, summaries, examples of anything but error codes, and key order are not in
  the view, so cosmetic edits do not change the fingerprint.
- ``page`` (HTML or text): the page's normalised text: scripts, styles, dates, times and
  whitespace removed, one line per block (paragraph, heading, list item, row).

:func:`compare_views` names each change with the contract clause it touches.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal

import yaml

from chatcontract.contract import Contract

from ._docs_fetch import FetchedDocument
from ._docs_openapi import openapi_view

__all__ = [
    "DocChange",
    "DocumentFacts",
    "compare_views",
    "document_facts",
    "normalise_page",
    "openapi_view",
]

DocumentKind = Literal["openapi", "page"]

#: The longest page text kept for a diff at review time.
_MAX_TEXT = 512 * 1024
_DIFF_LINES = 40
_DIFF_WIDTH = 200
#: The most lines, on either side, ``difflib`` compares (between the common head and tail).
_DIFF_MAX_LINES = 2_000


@dataclass(frozen=True, slots=True, kw_only=True)
class DocChange:
    """One documentation change, in contract terms."""

    kind: str
    clause: str
    detail: str
    diff: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "clause": self.clause, "detail": self.detail}
        if self.diff:
            out["diff"] = list(self.diff)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentFacts:
    """What was fingerprinted: kind, fingerprint, and the view it was computed from."""

    url: str
    kind: DocumentKind
    fingerprint: str
    view: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    #: Where a redirect to another host took the fetch (what was fingerprinted); "" when none.
    redirected_to: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = {
            "url": self.url,
            "kind": self.kind,
            "fingerprint": self.fingerprint,
            "summary": self.summary,
            "view": dict(self.view),
        }
        if self.redirected_to:
            out["redirected_to"] = self.redirected_to
        return out

    @classmethod
    def from_dict(cls, data: Any) -> DocumentFacts | None:
        """Read :meth:`to_dict`'s form; None when it is not one."""
        if not isinstance(data, Mapping):
            return None
        url, kind, fingerprint = data.get("url"), data.get("kind"), data.get("fingerprint")
        view = data.get("view")
        if not (
            isinstance(url, str)
            and kind in ("openapi", "page")
            and isinstance(fingerprint, str)
            and isinstance(view, Mapping)
        ):
            return None
        summary, redirected_to = data.get("summary"), data.get("redirected_to")
        return cls(
            url=url,
            kind=kind,
            fingerprint=fingerprint,
            view=view,
            summary=summary if isinstance(summary, str) else "",
            redirected_to=redirected_to if isinstance(redirected_to, str) else "",
        )


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- reading the document ---------------------------------------------------------------------


#: A YAML number longer than this is kept as its text: converting a 10,000-digit integer
#: raises, and a sexagesimal one (``1:59:59:...``) takes time quadratic in its length.
_MAX_NUMBER = 64


class _SafeLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, with overlong numbers kept as text."""


def _bounded_number(constructor: Any) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node.value, str) and len(node.value) > _MAX_NUMBER:
            return loader.construct_scalar(node)  # type: ignore[arg-type]
        return constructor(loader, node)

    return construct


for _tag, _constructor in (
    ("tag:yaml.org,2002:int", yaml.SafeLoader.construct_yaml_int),
    ("tag:yaml.org,2002:float", yaml.SafeLoader.construct_yaml_float),
):
    _SafeLoader.add_constructor(_tag, _bounded_number(_constructor))


def _openapi_spec(document: FetchedDocument, text: str) -> Mapping[str, Any] | None:
    """The parsed OpenAPI document, or None when the body is not one."""
    content_type = document.content_type.lower()
    stripped = text.lstrip()
    parsed: Any = None
    if "json" in content_type or stripped.startswith("{"):
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):  # a 10,000-digit number, nesting 100,000 deep
            parsed = None
    path = urllib.parse.urlsplit(document.final_url).path.lower()
    if parsed is None and (
        "yaml" in content_type
        or path.endswith((".yaml", ".yml"))
        or stripped.startswith(("openapi:", "swagger:"))
    ):
        try:
            parsed = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 (a SafeLoader)
        except (yaml.YAMLError, ValueError, OverflowError, RecursionError):
            # ValueError: a 10,000-digit integer, a date like 2024-13-45 (the constructors'
            # own errors, not YAMLError); RecursionError: nesting deeper than the stack.
            parsed = None
    if isinstance(parsed, Mapping) and ("openapi" in parsed or "swagger" in parsed):
        return parsed
    return None


def _other_host(document: FetchedDocument) -> str:
    """The final URL (no query) when a redirect took the fetch to another host than named."""
    named = urllib.parse.urlsplit(document.url)
    final = urllib.parse.urlsplit(document.final_url)
    if (named.scheme, named.netloc.lower()) == (final.scheme, final.netloc.lower()):
        return ""
    # Without its query: a signed URL (an expiring token) differs on every fetch, and is no
    # business of the output.
    shown = urllib.parse.urlunsplit((final.scheme, final.netloc, final.path, "", ""))
    return _CONTROLS.sub("?", shown)[:300]


def document_facts(document: FetchedDocument, contract: Contract) -> DocumentFacts:
    """Fingerprint a fetched document for ``contract`` (OpenAPI operation or page text)."""
    text = document.body.decode("utf-8", errors="replace")
    redirected_to = _other_host(document)
    spec = _openapi_spec(document, text)
    if spec is not None:
        view = openapi_view(
            spec,
            path=contract.endpoint.path,
            method=contract.endpoint.method,
            base_url=contract.endpoint.base_url,
        )
        operation = view.get("operation")
        summary = (
            f"OpenAPI operation {operation}"
            if operation
            else f"OpenAPI document without {contract.endpoint.method} {contract.endpoint.path}"
        )
        return DocumentFacts(
            url=document.url,
            kind="openapi",
            fingerprint=_digest(view),
            view=view,
            summary=summary,
            redirected_to=redirected_to,
        )
    is_html = "html" in document.content_type.lower() or text.lstrip().startswith("<")
    page = normalise_page(text) if is_html else _normalise_text(text)
    fingerprint = _digest(page)
    kept = page if len(page) <= _MAX_TEXT else ""
    return DocumentFacts(
        url=document.url,
        kind="page",
        fingerprint=fingerprint,
        view={"text": kept, "lines": page.count("\n") + 1 if page else 0},
        summary=f"page text, {page.count(chr(10)) + 1 if page else 0} lines",
        redirected_to=redirected_to,
    )


# -- pages ------------------------------------------------------------------------------------

_SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "head"})
_BLOCKS = frozenset(
    {
        "p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "li",
        "ul", "ol", "dl", "dt", "dd", "tr", "table", "thead", "tbody", "h1", "h2", "h3", "h4",
        "h5", "h6", "pre", "blockquote", "br", "hr", "title", "td", "th", "figcaption", "summary",
        "details", "form",
    }
)  # fmt: skip
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATES = re.compile(
    "|".join(
        (
            r"\b\d{4}-\d{2}-\d{2}(?:[t ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}:?\d{2})?)?",
            r"\b\d{4}/\d{1,2}/\d{1,2}\b",
            r"\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b",
            rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}\b",
            rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b",
            rf"\b{_MONTH}\s+\d{{4}}\b",
            r"\b\d{1,2}:\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?(?:\s*(?:utc|gmt|[a-z]{2,4}t))?\b",
            r"(?:©|\(c\)|copyright)\s*\d{4}(?:\s*[-–]\s*\d{4})?",
            r"\b\d+\s+(?:second|minute|hour|day|week|month|year)s?\s+ago\b",
        )
    ),
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")
#: Control characters (C0 but tab and newlines, DEL, C1): a page's text is printed in diffs, and
#: an escape sequence from the network must not reach the terminal.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skipping += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            # Source line breaks are layout, not content: only blocks start a line.
            self.parts.append(_SPACE.sub(" ", data))


def _clean_lines(text: str) -> str:
    text = _CONTROLS.sub(" ", text)
    lines = (_SPACE.sub(" ", _DATES.sub(" ", line)).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


#: Where a comment and a marked section (``<![CDATA[``) can end.
_COMMENT_END = re.compile(r"--\s*>")
_SECTION_END = re.compile(r"\]\s*>")
_OPENINGS = re.compile(r"<!--|<!\[")
#: A marked section whose keyword ``HTMLParser`` does not know: it raises ``AssertionError``.
_UNKNOWN_SECTION = re.compile(
    r"<!\[(?!(?i:temp|cdata|ignore|include|rcdata|if|else|endif)(?![-_.a-zA-Z0-9]))"
)


def _last_end(pattern: re.Pattern[str], text: str) -> int:
    last = -1
    for match in pattern.finditer(text):
        last = match.end()
    return last


def _defused(html: str) -> str:
    """``html`` with every ``<`` that can never complete a construct written ``&lt;``.

    ``HTMLParser`` scans from each ``<`` to the end of the input when nothing closes what it
    opens (``<a b="``, ``<!--``, ``<![CDATA[``), then reads that ``<`` as text at ``close()``:
    time quadratic in their number (120 KB of ``<a b="``: over 30 s). Past the last ``>``
    nothing can close, nor a comment past the last ``-->``, nor a section past the last
    ``]>``: those ``<`` are text, written so the parser reads them as text at once.
    """
    last_gt = html.rfind(">") + 1
    head, tail = html[:last_gt], html[last_gt:].replace("<", "&lt;")
    comments_end = _last_end(_COMMENT_END, head)
    sections_end = _last_end(_SECTION_END, head)

    def opening(match: re.Match[str]) -> str:
        opened = match.group()
        end = comments_end if opened == "<!--" else sections_end
        return "&lt;" + opened[1:] if match.start() >= end else opened

    return _UNKNOWN_SECTION.sub("&lt;![", _OPENINGS.sub(opening, head)) + tail


def normalise_page(html: str) -> str:
    """An HTML page's visible text: no scripts or styles, no dates, one line per block."""
    parser = _TextParser()
    try:
        parser.feed(_defused(html))
        parser.close()
    except AssertionError:  # _markupbase's way to refuse a declaration; never seen since
        return _normalise_text(html)
    return _clean_lines("".join(parser.parts))


def _normalise_text(text: str) -> str:
    return _clean_lines(text)


def page_diff(old: str, new: str) -> tuple[str, ...]:
    """A short unified diff of two page texts (bounded in lines, width and work).

    ``difflib`` takes time far beyond linear in the lines it compares (two 20,000-line texts
    of 150 repeated lines: 76 s), so it only sees what lies between the common head and tail,
    and not at all when that is over ``_DIFF_MAX_LINES`` lines on either side.
    """
    before, after = old.splitlines(), new.splitlines()
    shortest = min(len(before), len(after))
    head = 0
    while head < shortest and before[head] == after[head]:
        head += 1
    tail = 0
    while tail < shortest - head and before[-1 - tail] == after[-1 - tail]:
        tail += 1
    before, after = before[head : len(before) - tail], after[head : len(after) - tail]
    if len(before) > _DIFF_MAX_LINES or len(after) > _DIFF_MAX_LINES:
        return (
            f"... {len(before)} lines now {len(after)} lines from line {head + 1}: "
            f"over {_DIFF_MAX_LINES}, not diffed",
        )
    lines = [
        _HUNK.sub(lambda hunk: _shifted(hunk, head), line)[:_DIFF_WIDTH]
        for line in difflib.unified_diff(before, after, "validated", "now", n=0, lineterm="")
        if not line.startswith(("---", "+++"))
    ]
    if len(lines) > _DIFF_LINES:
        lines = [*lines[:_DIFF_LINES], f"... {len(lines) - _DIFF_LINES} more diff lines"]
    return tuple(lines)


_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@$")


def _shifted(hunk: re.Match[str], offset: int) -> str:
    """A hunk header of a diff of the lines from ``offset`` on, numbered in the whole text."""
    old_start, old_count, new_start, new_count = hunk.groups()
    return (
        f"@@ -{int(old_start) + offset}{old_count or ''} "
        f"+{int(new_start) + offset}{new_count or ''} @@"
    )


# -- comparing --------------------------------------------------------------------------------


def _sent_fields(contract: Contract) -> dict[str, str]:
    """The request fields the contract sends, with the clause that says so."""
    sent = dict.fromkeys(contract.request.required, "request.required")
    for name in contract.request.fixture:
        sent.setdefault(str(name), "request.fixture")
    for name in contract.request.optional_in_use:
        sent.setdefault(name, "request.optional_in_use")
    return sent


def _read_paths(contract: Contract) -> dict[str, str]:
    """The response paths the contract reads (``[0]`` as ``[]``), with their clause."""
    read: dict[str, str] = {}
    for clause, paths in (
        ("response.required_paths", contract.response.required_paths),
        ("response.optional_paths", contract.response.optional_paths),
    ):
        for path in paths:
            read.setdefault(re.sub(r"\[\d+\]", "[]", path), clause)
    return read


def _listed(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _rules_for(contract: Contract, *, status: str, code: str | None = None) -> list[str]:
    return [
        rule.name
        for rule in contract.errors.rules
        if (code is not None and rule.code == code)
        or (code is None and status.isdigit() and rule.status and int(status) in rule.status)
    ]


def _field_changes(
    old: Mapping[str, str],
    new: Mapping[str, str],
    watched: Mapping[str, str],
    *,
    side: str,
) -> list[DocChange]:
    changes = []
    for path, clause in watched.items():
        if path in old and path not in new:
            changes.append(
                DocChange(
                    kind=f"{side}_field_removed",
                    clause=clause,
                    detail=f"the documentation no longer lists {side} field '{path}' "
                    f"(was {old[path]}); {clause} names it",
                )
            )
        elif path in old and path in new and old[path] != new[path]:
            changes.append(
                DocChange(
                    kind=f"{side}_field_retyped",
                    clause=clause,
                    detail=f"{side} field '{path}' is now {new[path]} (was {old[path]}); "
                    f"{clause} names it",
                )
            )
    added = sorted(set(new) - set(old) - set(watched))
    removed = sorted(set(old) - set(new) - set(watched))
    retyped = sorted(p for p in set(old) & set(new) - set(watched) if old[p] != new[p])
    unread = "sends" if side == "request" else "reads"
    for what, names in (("new", added), ("removed", removed), ("retyped", retyped)):
        if names:
            changes.append(
                DocChange(
                    kind=f"{side}_schema_changed",
                    clause=f"none (the contract {unread} none of them)",
                    detail=f"{what} {side} field(s) {_listed(names)}",
                )
            )
    return changes


def _error_changes(
    old: Mapping[str, Any], new: Mapping[str, Any], contract: Contract
) -> list[DocChange]:
    changes = []
    for status in sorted(set(new) - set(old)):
        rules = _rules_for(contract, status=status)
        codes = new[status].get("codes") or []
        covered = (
            f"errors.rules {', '.join(rules)} match it"
            if rules
            else f"no errors.rules row names status {status}"
        )
        changes.append(
            DocChange(
                kind="new_error_status",
                clause="errors.rules",
                detail=f"the documentation now lists HTTP {status}"
                + (f" (codes {_listed(codes)})" if codes else "")
                + f"; {covered}",
            )
        )
    changes.extend(
        DocChange(
            kind="error_status_removed",
            clause="errors.rules",
            detail=f"the documentation no longer lists HTTP {status}",
        )
        for status in sorted(set(old) - set(new))
    )
    for status in sorted(set(old) & set(new)):
        for key, word in (("codes", "code"), ("types", "type")):
            gone = sorted(set(old[status].get(key) or ()) - set(new[status].get(key) or ()))
            came = sorted(set(new[status].get(key) or ()) - set(old[status].get(key) or ()))
            if not gone and not came:
                continue
            rules = [
                name for code in gone for name in _rules_for(contract, status=status, code=code)
            ]
            clause = f"errors.rules[{rules[0]}]" if len(rules) == 1 else "errors.rules"
            if gone and came:
                detail = f"HTTP {status}: error {word} {_listed(gone)} is now {_listed(came)}"
                kind = f"error_{word}_changed"
            elif came:
                detail = f"HTTP {status}: new error {word} {_listed(came)}"
                kind = f"new_error_{word}"
            else:
                detail = f"HTTP {status}: error {word} {_listed(gone)} no longer documented"
                kind = f"error_{word}_removed"
            if rules:
                detail += f"; errors.rules {', '.join(rules)} match the old {word}"
            changes.append(DocChange(kind=kind, clause=clause, detail=detail))
    return changes


def compare_views(old: DocumentFacts, new: DocumentFacts, contract: Contract) -> list[DocChange]:
    """Every change from ``old`` to ``new``, named in contract terms (empty when equal)."""
    if old.redirected_to != new.redirected_to and old.url == new.url:
        return [
            DocChange(
                kind="documentation_source_changed",
                clause="reference_url",
                detail=f"{new.url} now redirects to "
                f"{new.redirected_to or 'nowhere (served by its own host)'} "
                f"(validated: {old.redirected_to or 'served by its own host'}); "
                "review the document it leads to",
            )
        ]
    if old.fingerprint == new.fingerprint and old.kind == new.kind:
        return []
    if old.url != new.url:
        return [
            DocChange(
                kind="documentation_source_changed",
                clause="reference_url",
                detail=f"reference_url is now {new.url} (validated against {old.url}); "
                "review the new document",
            )
        ]
    if old.kind != new.kind:
        return [
            DocChange(
                kind="documentation_format_changed",
                clause="reference_url",
                detail=f"the document is now {new.summary or new.kind} "
                f"(was {old.summary or old.kind})",
            )
        ]
    if new.kind == "page":
        old_text, new_text = str(old.view.get("text", "")), str(new.view.get("text", ""))
        diff = page_diff(old_text, new_text) if old_text and new_text else ()
        return [
            DocChange(
                kind="page_changed",
                clause="reference_url",
                detail="changed; review" + ("" if diff else " (too large to diff)"),
                diff=diff,
            )
        ]
    return _operation_changes(old.view, new.view, contract) or [
        DocChange(
            kind="operation_changed",
            clause="none",
            detail="the operation's description changed in a way no clause reads",
        )
    ]


def _operation_changes(
    old: Mapping[str, Any], new: Mapping[str, Any], contract: Contract
) -> list[DocChange]:
    endpoint = f"{contract.endpoint.method} {contract.endpoint.path}"
    if old.get("operation") and not new.get("operation"):
        return [
            DocChange(
                kind="operation_removed",
                clause="endpoint.path",
                detail=f"the documentation no longer describes {endpoint} (was {old['operation']})",
            )
        ]
    if not old.get("operation"):
        return [
            DocChange(
                kind="operation_added",
                clause="endpoint.path",
                detail=f"the documentation now describes {new.get('operation')}",
            )
        ]
    changes: list[DocChange] = []
    old_request, new_request = old.get("request", {}), new.get("request", {})
    sent = _sent_fields(contract)
    for name in sorted(set(new_request.get("required", ())) - set(old_request.get("required", ()))):
        missing = (
            name not in sent and name.split(".")[0].split("[")[0] not in contract.request.fixture
        )
        changes.append(
            DocChange(
                kind="new_required_request_field",
                clause="request.required",
                detail=f"the documentation now requires '{name}' in the request; "
                f"request.required lists {', '.join(contract.request.required)}"
                + ("" if not missing else " and the fixture does not send it"),
            )
        )
    no_longer = set(old_request.get("required", ())) - set(new_request.get("required", ()))
    changes.extend(
        DocChange(
            kind="request_field_no_longer_required",
            clause="request.required",
            detail=f"'{name}' is no longer required by the documentation",
        )
        for name in sorted(no_longer)
    )
    changes += _field_changes(
        old_request.get("fields", {}), new_request.get("fields", {}), sent, side="request"
    )
    old_response, new_response = old.get("response", {}), new.get("response", {})
    changes += _field_changes(
        old_response.get("fields", {}),
        new_response.get("fields", {}),
        _read_paths(contract),
        side="response",
    )
    changes += _error_changes(old.get("errors", {}), new.get("errors", {}), contract)
    return changes
