"""``chatcontract review``: is the last passing validation still valid?

A passing ``validate`` records what it validated (:func:`validated_facts`, the ``validated``
key of ``.chatcontract/last-validate.json``): the contract file's SHA-256 and document, the
installed versions of chatcontract, the openai SDK and httpx2, and a fingerprint of the
provider's documentation (``reference_url``: an OpenAPI operation or a page's text).

:func:`review` recomputes all of it and returns a :class:`ReviewResult`:

- ``unchanged`` (exit 0): nothing moved since the last passing validation;
- ``changed`` (exit 1): each change names the clause it touches (a contract clause edited,
  an SDK upgraded, a new required request field, a response field the contract reads removed
  or retyped, a new error status, a page changed, ``reviewed_on`` older than
  ``review_every_days``);
- ``unknown`` (exit 2): it cannot tell (no passing run recorded, a simulated run, the
  documentation unreachable), and says which.

A documentation change a person judged harmless is recorded with :func:`accept_documentation`
(who, when, what) in ``.chatcontract/review.json``; it becomes the documentation baseline for
that validate run, without a paid validate. ``review`` also keeps its last outcome there, so
``checklist`` can show the review state without fetching anything.

Example::

    contract = load("chatcontract.yaml")
    result = review(contract, contract_path="chatcontract.yaml",
                    record=read_record(), log=read_review_log())
    print(render_review_text(result)); sys.exit(result.exit_code)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from chatcontract.contract import Contract, contract_to_document, load
from chatcontract.contract.diff import diff_documents
from chatcontract.errors import ConfigError

from ._docs_fetch import DocumentUnreachable, FetchedDocument, fetch_document
from ._docs_fingerprint import DocChange, DocumentFacts, compare_views, document_facts
from .review_log import (
    REVIEW_LOG_PATH,
    _log_for_run,
    _now,
    _run_id,
    read_review_log,
    write_review_log,
)
from .review_result import (
    ReviewChange,
    ReviewResult,
    render_review_text,
    review_checklist_line,
)

__all__ = [
    "BOOKKEEPING_FIELDS",
    "REVIEW_LOG_PATH",
    "TRACKED_PACKAGES",
    "ReviewChange",
    "ReviewResult",
    "accept_documentation",
    "describe_documentation",
    "fetch_document",
    "installed_versions",
    "read_review_log",
    "render_review_text",
    "review",
    "review_checklist_line",
    "validated_facts",
    "with_last_review",
    "write_review_log",
]

#: Packages whose installed version is part of what a validate run proved.
TRACKED_PACKAGES: Mapping[str, str] = {
    "chatcontract": "chatcontract (checks, parser, classifier)",
    "openai": "client: the openai SDK",
    "httpx2": "transport: httpx2",
}
#: Contract fields that record the review itself, not behaviour: editing them (bumping
#: ``reviewed_on`` after a review) does not call for a new validate.
BOOKKEEPING_FIELDS: frozenset[str] = frozenset(
    {
        "reviewed_on",
        "review_every_days",
        "owner",
        "revalidate_when",
        "attestations",
        "reference_url",
    }
)

Fetch = Callable[[str], FetchedDocument | DocumentUnreachable]


# -- what validate records --------------------------------------------------------------------


def installed_versions() -> dict[str, str | None]:
    """The installed version of each tracked package (None when it is not installed)."""
    found: dict[str, str | None] = {}
    for name in TRACKED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _file_digest(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _documentation_now(contract: Contract, fetch: Fetch) -> DocumentFacts | DocumentUnreachable:
    fetched = fetch(contract.reference_url)
    if isinstance(fetched, DocumentUnreachable):
        return fetched
    return document_facts(fetched, contract)


def validated_facts(
    contract: Contract,
    contract_path: str | None,
    *,
    simulated: bool,
    fetch: Fetch | None = None,
) -> dict[str, Any]:
    """What a passing validate proved, for the run record's ``validated`` key.

    Never raises for the documentation: unreachable is recorded with its reason. A simulated
    run fetches nothing (it proved nothing about the provider).
    """
    document: dict[str, Any] | None = None
    digest: str | None = None
    if contract_path is not None:
        try:
            digest = _file_digest(contract_path)
            # The file as written, not the run's overrides (--base-url): review compares files.
            document = contract_to_document(load(contract_path))
        except (OSError, ConfigError):
            digest, document = None, None
    documentation: dict[str, Any]
    if not contract.reference_url.strip():
        documentation = {"state": "none", "reason": "the contract has no reference_url"}
    elif simulated:
        documentation = {
            "state": "skipped",
            "url": contract.reference_url,
            "reason": "a simulated run proves nothing about the provider",
        }
    else:
        now = _documentation_now(contract, fetch or _default_fetch)
        if isinstance(now, DocumentUnreachable):
            documentation = {"state": "unreachable", "url": now.url, "reason": now.reason}
        else:
            documentation = {"state": "fingerprinted", **now.to_dict()}
        documentation["fetched_at"] = _now()
    return {
        "contract": {"path": contract_path, "sha256": digest, "document": document},
        "versions": installed_versions(),
        "documentation": documentation,
    }


def _default_fetch(url: str) -> FetchedDocument | DocumentUnreachable:
    # Looked up at call time so a test (or an embedding application) can replace it.
    return fetch_document(url)


def describe_documentation(facts: Mapping[str, Any]) -> str:
    """One line for validate's stderr: what was fingerprinted, or why not."""
    documentation = facts.get("documentation") or {}
    state = documentation.get("state")
    if state == "fingerprinted":
        redirected = documentation.get("redirected_to")
        return (
            f"documentation fingerprinted: {documentation.get('url')} "
            f"({documentation.get('summary')}, {documentation.get('fingerprint')})"
            + (f"; redirected to another host: {redirected}" if redirected else "")
        )
    if state == "unreachable":
        return (
            f"documentation could not be fetched: {documentation.get('url')}: "
            f"{documentation.get('reason')}; 'chatcontract review' will say it cannot tell"
        )
    return f"documentation not fingerprinted: {documentation.get('reason')}"


# -- the review -------------------------------------------------------------------------------


def _unknown(contract: Contract, reason: str, *, validated_at: str | None = None) -> ReviewResult:
    return ReviewResult(contract_name=contract.name, validated_at=validated_at, unknown=(reason,))


def _review_date(contract: Contract, today: dt.date) -> tuple[list[ReviewChange], list[str]]:
    every = contract.review_every_days
    if contract.reviewed_on is None:
        return [
            ReviewChange(
                source="review_date",
                kind="never_reviewed",
                clause="reviewed_on",
                detail="not set: write the date a person last checked the contract against "
                "the reference (YYYY-MM-DD)",
            )
        ], []
    due = contract.reviewed_on + dt.timedelta(days=every)
    age = (today - contract.reviewed_on).days
    if today > due:
        return [
            ReviewChange(
                source="review_date",
                kind="review_overdue",
                clause="reviewed_on",
                detail=f"{contract.reviewed_on.isoformat()} is {age} days old (review_every_days: "
                f"{every}); review the contract and update reviewed_on",
            )
        ], []
    return [], [
        f"reviewed_on {contract.reviewed_on.isoformat()}: due {due.isoformat()} "
        f"(every {every} days)"
    ]


def _contract_changes(
    contract: Contract, contract_path: str, recorded: Mapping[str, Any]
) -> tuple[list[ReviewChange], list[str], list[str]]:
    digest = _file_digest(contract_path)
    if digest == recorded.get("sha256"):
        return [], [], [f"contract file {contract_path}: unchanged (sha256 {digest[:12]})"]
    old = recorded.get("document")
    if not isinstance(old, Mapping):
        return (
            [],
            [
                "the last passing validate ran without a contract file; run "
                f"'chatcontract validate --contract {contract_path}'"
            ],
            [],
        )
    new = contract_to_document(contract)
    changes, bookkeeping = [], []
    for change in diff_documents(old, new):
        top = change.path.split(".")[0].split(" ")[0]
        if top in BOOKKEEPING_FIELDS:
            bookkeeping.append(change.path)
            continue
        changes.append(
            ReviewChange(
                source="contract",
                kind="contract_changed",
                clause=change.path,
                detail=f"{change.describe().strip()[2:]} since the last passing validate; "
                "run 'chatcontract validate'",
            )
        )
    notes = []
    if bookkeeping and not changes:
        notes.append(
            f"contract file {contract_path} edited ({', '.join(sorted(set(bookkeeping)))}); "
            "no clause validate proves changed"
        )
    elif not changes:
        notes.append(f"contract file {contract_path}: reformatted, no field changed")
    return changes, [], notes


def _version_changes(recorded: Mapping[str, Any]) -> tuple[list[ReviewChange], list[str]]:
    now = installed_versions()
    changes = []
    for name, clause in TRACKED_PACKAGES.items():
        before, after = recorded.get(name), now.get(name)
        if before == after:
            continue
        changes.append(
            ReviewChange(
                source="versions",
                kind="version_changed",
                clause=clause,
                detail=f"{name} {before or 'not installed'} -> {after or 'not installed'} since "
                "the last passing validate; run 'chatcontract validate'",
            )
        )
    same = ", ".join(f"{name} {now[name]}" for name in TRACKED_PACKAGES if now.get(name))
    return changes, ([] if changes else [f"installed: {same}: as validated"])


def _baseline(
    validated: Mapping[str, Any], log: Mapping[str, Any]
) -> tuple[DocumentFacts | None, str]:
    """The documentation to compare with (the last accepted, else the validated), or why none."""
    accepted = log.get("accepted") or []
    if accepted:
        facts = DocumentFacts.from_dict(accepted[-1].get("documentation"))
        if facts is not None:
            return facts, ""
    recorded = validated.get("documentation") or {}
    if recorded.get("state") == "fingerprinted":
        facts = DocumentFacts.from_dict(recorded)
        if facts is not None:
            return facts, ""
    reason = recorded.get("reason") or "no fingerprint recorded"
    return None, (
        f"the documentation was not fingerprinted at the last passing validate ({reason}); "
        "review it and record it with 'chatcontract review --accept --by NAME'"
    )


def review(
    contract: Contract,
    *,
    contract_path: str,
    record: Mapping[str, Any] | None,
    log: Mapping[str, Any] | None = None,
    today: dt.date | None = None,
    fetch: Fetch | None = None,
    offline: bool = False,
) -> ReviewResult:
    """Recompute what the last passing validate recorded and compare.

    ``record`` is the parsed ``last-validate.json`` (None when there is none). With
    ``offline`` nothing is fetched: the documentation state is the last review's (``log``).
    """
    today = today or dt.date.today()
    if record is None:
        return _unknown(contract, "no validate run recorded; run 'chatcontract validate' first")
    found_report = record.get("report")
    report: Mapping[str, Any] = found_report if isinstance(found_report, Mapping) else {}
    started = report.get("started_at") if isinstance(report.get("started_at"), str) else None
    if record.get("verdict", report.get("verdict")) != "pass":
        return _unknown(
            contract,
            f"no passing run recorded: the last validate ({started or 'unknown time'}) failed; "
            "fix it and run 'chatcontract validate'",
            validated_at=started,
        )
    target = report.get("target")
    if isinstance(target, Mapping) and target.get("simulated"):
        return _unknown(
            contract,
            f"the last passing validate ({started}) ran against the simulator, which proves "
            f"nothing about {contract.endpoint.base_url}; run 'chatcontract validate' with the "
            "key set",
            validated_at=started,
        )
    validated = record.get("validated")
    if not isinstance(validated, Mapping):
        return _unknown(
            contract,
            "the last passing validate recorded no review facts (an older chatcontract); run "
            "'chatcontract validate' again",
            validated_at=started,
        )
    run_id = _run_id(report, validated)
    run_log = _log_for_run(log or {}, run_id)
    changes, unknown, notes = _contract_changes(
        contract, contract_path, validated.get("contract") or {}
    )
    version_changes, version_notes = _version_changes(validated.get("versions") or {})
    changes += version_changes
    notes += version_notes
    date_changes, date_notes = _review_date(contract, today)
    changes += date_changes
    notes += date_notes
    accepted = tuple(run_log.get("accepted") or ())
    documentation: DocumentFacts | None = None
    baseline: DocumentFacts | None = None
    if not contract.reference_url.strip():
        unknown.append(
            "the contract names no reference_url; write the provider's API reference (an "
            "OpenAPI document or a page) so changes to it can be noticed"
        )
    elif offline:
        changes_, unknown_, notes_ = _documentation_offline(run_log, validated)
        changes += changes_
        unknown += unknown_
        notes += notes_
    else:
        baseline, why_none = _baseline(validated, run_log)
        now = _documentation_now(contract, fetch or _default_fetch)
        if isinstance(now, DocumentUnreachable):
            unknown.append(f"documentation unreachable: {now.url}: {now.reason}")
        else:
            documentation = now
            if now.redirected_to:
                notes.append(
                    f"documentation {now.url} redirected to another host: what "
                    f"{now.redirected_to} serves was fingerprinted"
                )
            if baseline is None:
                unknown.append(why_none)
            else:
                found = compare_views(baseline, now, contract)
                changes += [_from_doc(change) for change in found]
                if not found:
                    notes.append(
                        f"documentation {now.url}: unchanged ({now.summary}, {now.fingerprint})"
                    )
    return ReviewResult(
        contract_name=contract.name,
        validated_at=started,
        changes=tuple(changes),
        unknown=tuple(unknown),
        notes=tuple(notes),
        documentation=documentation,
        baseline=baseline,
        run_id=run_id,
        accepted=accepted,
    )


def _from_doc(change: DocChange) -> ReviewChange:
    return ReviewChange(
        source="documentation",
        kind=change.kind,
        clause=change.clause,
        detail=change.detail,
        diff=change.diff,
    )


def _documentation_offline(
    run_log: Mapping[str, Any], validated: Mapping[str, Any]
) -> tuple[list[ReviewChange], list[str], list[str]]:
    last = run_log.get("last_review")
    if isinstance(last, Mapping):
        at = last.get("at")
        doc_changes = [c for c in last.get("changes") or () if c.get("source") == "documentation"]
        doc_unknown = [u for u in last.get("unknown") or () if "documentation" in str(u)]
        if doc_changes:
            return (
                [
                    ReviewChange(
                        source="documentation",
                        kind=str(c.get("kind")),
                        clause=str(c.get("clause")),
                        detail=f"{c.get('detail')} (review of {at})",
                    )
                    for c in doc_changes
                ],
                [],
                [],
            )
        if doc_unknown:
            return [], [f"{doc_unknown[0]} (review of {at})"], []
        return [], [], [f"documentation unchanged as of the review of {at}"]
    recorded = validated.get("documentation") or {}
    if recorded.get("state") == "fingerprinted":
        return (
            [],
            [],
            [
                f"documentation fingerprinted at validate ({recorded.get('fetched_at')}); "
                "compare it now with 'chatcontract review'"
            ],
        )
    return (
        [],
        [
            f"the documentation was not fingerprinted at the last passing validate "
            f"({recorded.get('reason')}); run 'chatcontract review'"
        ],
        [],
    )


# -- accepting a documentation change ---------------------------------------------------------


def accept_documentation(
    result: ReviewResult,
    log: Mapping[str, Any],
    *,
    by: str,
    note: str = "",
    at: str | None = None,
) -> tuple[ReviewResult, dict[str, Any]]:
    """Record the current documentation as judged harmless by ``by``.

    Returns the result without the accepted documentation changes, and the new log. Contract
    and version changes are not accepted: they call for a validate.

    Raises:
        ConfigError: there is nothing to accept (the documentation could not be fetched, or
            no passing run is recorded).
    """
    if result.run_id is None or result.documentation is None:
        reason = "; ".join(result.unknown) or "the documentation was not fetched"
        raise ConfigError(f"nothing to accept: {reason}")
    doc_changes = [c for c in result.changes if c.source == "documentation"]
    missing_baseline = [u for u in result.unknown if "not fingerprinted" in u]
    if not doc_changes and not missing_baseline:
        raise ConfigError(
            "nothing to accept: the documentation is unchanged since the last passing validate"
        )
    run_log = dict(_log_for_run(log, result.run_id))
    entry = {
        "by": by,
        "at": at or _now(),
        "note": note,
        "changes": [change.to_dict() for change in doc_changes]
        or [{"kind": "first_fingerprint", "detail": missing_baseline[0]}],
        "documentation": result.documentation.to_dict(),
    }
    new_log = {
        **run_log,
        "validate_run": result.run_id,
        "accepted": [*(run_log.get("accepted") or []), entry],
    }
    remaining = tuple(c for c in result.changes if c.source != "documentation")
    unknown = tuple(u for u in result.unknown if u not in missing_baseline)
    accepted_note = (
        f"accepted by {by} at {entry['at']}: {len(entry['changes'])} documentation change(s)"
    )
    updated = ReviewResult(
        contract_name=result.contract_name,
        validated_at=result.validated_at,
        changes=remaining,
        unknown=unknown,
        notes=(*result.notes, accepted_note),
        documentation=result.documentation,
        baseline=result.documentation,
        run_id=result.run_id,
        accepted=(*result.accepted, entry),
    )
    return updated, new_log


def with_last_review(
    log: Mapping[str, Any], result: ReviewResult, *, at: str | None = None
) -> dict[str, Any]:
    """``log`` with ``result`` as the last review of its validate run."""
    if result.run_id is None:
        return dict(log)
    run_log = dict(_log_for_run(log, result.run_id))
    return {
        **run_log,
        "validate_run": result.run_id,
        "last_review": {
            "at": at or _now(),
            "verdict": result.verdict,
            "changes": [change.to_dict() for change in result.changes],
            "unknown": list(result.unknown),
        },
    }
