"""Writes: installing the shipped profiles, creating versions, activating a profile for a region.

Every write runs in one transaction with its audit record (``jingkong.access.audit.record``) and domain event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from django.db import IntegrityError, transaction
from pydantic import ValidationError

from jingkong.access import audit
from jingkong.core import clock
from jingkong.core.events import emit
from jingkong.core.exceptions import ApplicationError, Conflict, NotFound, ValidationFailed
from jingkong.geo.models import Region
from jingkong.policy.models import PolicyActivation, PolicyProfile
from jingkong.policy.schema import ProfileDocument, rule_errors, rule_paths, rule_values, validate_document
from jingkong.policy.selectors import PolicyNotActive, active_profile, active_profile_cache_clear, profile_rules

# The demo replays the Beilun outbreak of January 2022, when the 8th edition was in force.
DEMO_REGION_CODE = "330206"
DEMO_PROFILE_CODE = "cn-8th-2021"
DEMO_ACTIVATED_AT = dt.datetime(2021, 12, 31, 16, 0, tzinfo=dt.UTC)  # 2022-01-01 00:00 Asia/Shanghai


@dataclass(frozen=True)
class InstallOutcome:
    code: str
    version: int
    created: bool


def _canonical_hash(doc: ProfileDocument, rules: dict, sources: dict) -> str:
    """Hash of the document as written (not as re-serialised), so adding optional schema fields changes nothing."""
    body = {
        "code": doc.code,
        "edition": doc.edition,
        "name": {"zh": doc.name.zh, "en": doc.name.en},
        "issued_on": doc.issued_on.isoformat(),
        "valid_from": doc.valid_from.isoformat(),
        "summary": {"zh": doc.summary.zh, "en": doc.summary.en},
        "rules": rules,
        "sources": sources,
    }
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _invalid(errors, message: str = "the policy profile is invalid") -> ValidationFailed:
    return ValidationFailed(
        f"{message}: " + "; ".join(str(e) for e in errors[:5]) + (" …" if len(errors) > 5 else ""),
        code="policy_invalid",
        extra={"errors": [e.as_dict() for e in errors]},
    )


def _insert(*, doc: ProfileDocument, rules: dict, sources: dict, content_hash: str, version: int, origin: str,
            based_on: PolicyProfile | None, note: str, actor, request=None, source: str = "") -> PolicyProfile:
    row = PolicyProfile(
        code=doc.code, version=version, edition=doc.edition, name_zh=doc.name.zh, name_en=doc.name.en,
        summary_zh=doc.summary.zh, summary_en=doc.summary.en, issued_on=doc.issued_on, valid_from=doc.valid_from,
        rules=rules, sources=sources, content_hash=content_hash, origin=origin, based_on=based_on, note=note,
        created_at=clock.now(), created_by=actor if getattr(actor, "pk", None) else None,
    )
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        raise Conflict(f"version {version} of {doc.code} was created at the same time; try again",
                       code="version_taken") from None
    detail = {"code": row.code, "version": row.version, "origin": origin, "content_hash": content_hash,
              "based_on": based_on.version if based_on else None, "note": note}
    audit.record(actor=actor, action="policy.profile_create", object_type="policy.policyprofile", object_id=row.pk,
                 request=request, detail=detail, source=source)
    emit("policy.profile_created", subject=row, actor=actor, payload=detail)
    return row


def _inherit_sources(*, previous: PolicyProfile, rules: dict, version: int, actor, note: str) -> dict:
    """Keep the provenance of unchanged values; mark changed or new values as a local decision of this version."""
    known = rule_paths(rules, include_nodes=True)
    sources = {k: v for k, v in (previous.sources or {}).items() if k in known}
    old = rule_values(previous.rules)
    who = getattr(actor, "username", "") or "system"
    for path, value in rule_values(rules).items():
        if path not in old or old[path] != value:
            sources[path] = {"status": "local", "ref": f"{previous.code} version {version} ({who})",
                             "note": (note or "changed by the district")[:1000]}
    return sources


def _localized(zh: str | None, en: str | None) -> dict | None:
    if zh is None and en is None:
        return None
    return {"zh": zh or "", "en": en or ""}


@transaction.atomic
def profile_create(
    *,
    code: str,
    rules: dict,
    actor,
    edition: str | None = None,
    name_zh: str | None = None,
    name_en: str | None = None,
    summary_zh: str | None = None,
    summary_en: str | None = None,
    issued_on: dt.date | None = None,
    valid_from: dt.date | None = None,
    sources: dict | None = None,
    note: str = "",
    request=None,
    source: str = "",
) -> PolicyProfile:
    """Store a validated rule set as the next version of ``code`` (version 1 for a new code).

    Header fields left out are taken from the latest version. ``sources`` left out: the provenance of unchanged values
    is kept and every changed value is marked ``local``. An unchanged rule set is refused (nothing to version).
    """
    previous = PolicyProfile.objects.filter(code=code).order_by("-version").first()
    version = previous.version + 1 if previous else 1

    def pick(given, attr, fallback=None):
        if given is not None:
            return given
        return getattr(previous, attr) if previous else fallback

    summary_zh_v, summary_en_v = pick(summary_zh, "summary_zh"), pick(summary_en, "summary_en")
    if sources is None:
        sources = _inherit_sources(previous=previous, rules=rules, version=version, actor=actor, note=note) \
            if previous and isinstance(rules, dict) else {}
    document = {
        "code": code,
        "edition": pick(edition, "edition"),
        "name": _localized(pick(name_zh, "name_zh"), pick(name_en, "name_en")),
        "issued_on": pick(issued_on, "issued_on"),
        "valid_from": pick(valid_from, "valid_from"),
        "summary": {"zh": summary_zh_v or "", "en": summary_en_v or ""},
        "rules": rules,
        "sources": sources,
    }
    doc, errors = validate_document({k: v for k, v in document.items() if v is not None})
    if errors:
        raise _invalid(errors)
    content_hash = _canonical_hash(doc, rules, sources)
    if previous is not None and previous.content_hash == content_hash:
        raise Conflict(f"nothing changed since {code} version {previous.version}", code="profile_unchanged")
    return _insert(doc=doc, rules=rules, sources=sources, content_hash=content_hash, version=version,
                   origin=PolicyProfile.Origin.CUSTOM, based_on=previous, note=note, actor=actor, request=request,
                   source=source)


def builtin_documents() -> list[tuple[str, dict]]:
    """The profiles shipped inside the package: ``(file name, parsed JSON)``, sorted by file name."""
    folder = resources.files("jingkong.policy") / "profiles"
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            out.append((entry.name, json.loads(entry.read_text(encoding="utf-8"))))
    return out


@transaction.atomic
def profile_install_builtin(*, actor=None, documents: list[tuple[str, dict]] | None = None,
                            source: str = "") -> list[InstallOutcome]:
    """Install the shipped profiles: version 1 when absent, a new version when the shipped JSON changed (idempotent)."""
    outcomes = []
    for name, raw in documents if documents is not None else builtin_documents():
        doc, errors = validate_document(raw)
        if errors:
            raise _invalid(errors, f"the shipped profile {name} is invalid")
        rules, sources = raw["rules"], raw.get("sources", {})
        content_hash = _canonical_hash(doc, rules, sources)
        same = PolicyProfile.objects.filter(code=doc.code, content_hash=content_hash).order_by("-version").first()
        if same is not None:
            outcomes.append(InstallOutcome(code=doc.code, version=same.version, created=False))
            continue
        previous = PolicyProfile.objects.filter(code=doc.code).order_by("-version").first()
        row = _insert(doc=doc, rules=rules, sources=sources, content_hash=content_hash,
                      version=previous.version + 1 if previous else 1, origin=PolicyProfile.Origin.BUILTIN,
                      based_on=previous, note=f"shipped with the platform ({name})", actor=actor, source=source)
        outcomes.append(InstallOutcome(code=row.code, version=row.version, created=True))
    return outcomes


def _summary(profile: PolicyProfile | None) -> dict | None:
    if profile is None:
        return None
    return {"id": profile.pk, "code": profile.code, "version": profile.version}


@transaction.atomic
def profile_activate(*, profile: PolicyProfile, region, actor, reason: str, at: dt.datetime | None = None,
                     request=None, source: str = "") -> PolicyActivation:
    """Put ``profile`` in force for ``region`` (and its subtree) from ``at`` (default: now); audited and evented."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("a reason is required to activate a policy profile", code="reason_required",
                               extra={"errors": [{"path": "reason", "reason": "required"}]})
    activated_at = at or clock.now()
    if activated_at.tzinfo is None:
        raise ValidationFailed("the activation time must include a time zone", code="naive_time")
    try:
        profile_rules(profile)  # the stored rules must still satisfy the current schema
    except ValidationError as exc:
        raise _invalid(rule_errors(exc, root="rules"), f"{profile} no longer validates") from None
    try:
        previous = active_profile(region_code=region.code, at=activated_at).profile
    except PolicyNotActive:
        previous = None
    row = PolicyActivation(
        region=region, profile=profile, activated_at=activated_at,
        activated_by=actor if getattr(actor, "pk", None) else None, reason=reason, recorded_at=clock.now(),
    )
    row.save(force_insert=True)
    detail = {"profile": _summary(profile), "previous": _summary(previous), "region": region.code,
              "activated_at": activated_at.isoformat(), "reason": reason}
    audit.record(actor=actor, action="policy.activate", object_type="policy.policyactivation", object_id=row.pk,
                 region_code=region.code, request=request, detail=detail, source=source)
    emit("policy.activated", subject=row, region_code=region.code, actor=actor, payload=detail, at=activated_at)
    active_profile_cache_clear()
    transaction.on_commit(active_profile_cache_clear)
    return row


@transaction.atomic
def profile_ensure_active(*, profile: PolicyProfile, region, actor, reason: str, at: dt.datetime | None = None,
                          request=None, source: str = "") -> PolicyActivation | None:
    """Activate unless exactly this version is already in force for the region at ``at``; None when nothing changed."""
    try:
        current = active_profile(region_code=region.code, at=at or clock.now()).profile
    except PolicyNotActive:
        current = None
    if current is not None and current.pk == profile.pk:
        return None
    return profile_activate(profile=profile, region=region, actor=actor, reason=reason, at=at, request=request,
                            source=source)


@transaction.atomic
def demo_activate(*, region_code: str = DEMO_REGION_CODE, at: dt.datetime | None = None,
                  actor=None) -> PolicyActivation | None:
    """Install the shipped profiles and put the 8th edition in force for Beilun from 1 January 2022 (idempotent).

    ``jingkong demo`` calls this; a replay of the outbreak then sees the rules in force in January 2022.
    """
    profile_install_builtin(actor=actor, source="demo")
    region = Region.objects.filter(code=region_code).first()
    if region is None:
        raise NotFound(f"region {region_code} not found (load the district first)")
    profile = PolicyProfile.objects.filter(code=DEMO_PROFILE_CODE).order_by("-version").first()
    if profile is None:  # pragma: no cover - the shipped profiles always include it
        raise ApplicationError(f"the shipped profile {DEMO_PROFILE_CODE} is missing")
    return profile_ensure_active(profile=profile, region=region, actor=actor, at=at or DEMO_ACTIVATED_AT,
                                 reason="Demo: the 8th-edition rules in force during the Beilun outbreak, January 2022",
                                 source="demo")


def parse_json_file(path: str) -> Any:
    """Read a JSON file for ``policy validate`` (a clear error instead of a traceback)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}",
                               extra={"errors": [{"path": "", "reason": exc.msg}]}) from None
