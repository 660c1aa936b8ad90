"""Tube results from FHIR: a Bundle of Observation / DiagnosticReport resources.

Validation uses the maintained ``fhir.resources`` package (version 8), through its ``fhir.resources.R4B`` models:
FHIR R4B (4.3) is the R4-compatible release the package ships (Observation, DiagnosticReport, Specimen, Device and
Practitioner are unchanged in the parts used here), so an R4 Bundle validates as is. Each entry's resource is
validated on its own, so one invalid entry is reported (entry index and path, e.g.
``entry[3].resource.effectiveDateTime``) and the others are still applied.

What is accepted (documented for labs in docs/testing-labs.md):

* **Bundle** of any ``type`` (collection, batch, transaction, message, …); other top-level resources are refused.
* **The tube** (barcode) of an Observation: ``Observation.specimen`` — its ``identifier.value``, or a ``reference``
  to a Specimen in the bundle (by ``fullUrl`` or ``Specimen/<id>``) or contained in the Observation (``#id``), whose
  ``accessionIdentifier.value`` (else first ``identifier.value``) is the barcode. An Observation listed in a
  DiagnosticReport's ``result`` inherits the report's specimen, performer and time when it has none.
* **The outcome** from ``valueCodeableConcept``: SNOMED CT 260385009 Negative / 260415000 Not detected → negative;
  10828004 Positive / 260373001 Detected → positive; 455371000124106 Invalid result / 125154007 Specimen
  unsatisfactory → invalid; HL7 v3 ObservationInterpretation NEG / POS (and ND / DET); otherwise the text or a
  coding's display: negative / positive / invalid, 阴性 / 阳性 / 无效. A DiagnosticReport whose ``conclusionCode``
  gives an outcome and whose results give none is itself a result.
* **Ct values**: each ``Observation.component`` with a ``valueQuantity``, the target gene named in ``code.text``
  (or a coding's display/code: ORF1ab, N, E, RdRp, S); also separate Observations with a ``valueQuantity`` for the
  same specimen (merged into that tube's result).
* **Operator** from ``performer`` (display, or the referenced Practitioner's name), **instrument** from ``device``
  (display, or the referenced Device's deviceName / identifier), **tested_at** from ``effectiveDateTime`` (a time of
  day and a UTC offset are required, as FHIR itself requires), else ``effectiveInstant``, else ``issued``.
* Observation ``status`` final, amended or corrected (others — preliminary, cancelled, entered-in-error — are
  reported, not applied). Entries of other resource types (Patient, Organization, …) are validated and ignored.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import pydantic

from jingkong.core.exceptions import ValidationFailed
from jingkong.testing.results import OUTCOME_WORDS, ResultRow, RowError, gene_name, parse_ct, safe_text

SNOMED = "http://snomed.info/sct"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
SNOMED_OUTCOMES = {
    "260385009": "negative", "260415000": "negative",
    "10828004": "positive", "260373001": "positive",
    "455371000124106": "invalid", "125154007": "invalid",
}
V3_OUTCOMES = {"NEG": "negative", "ND": "negative", "POS": "positive", "DET": "positive"}
FINAL_STATUSES = {"final", "amended", "corrected"}
USED_TYPES = {"Observation", "DiagnosticReport", "Specimen", "Device", "Practitioner", "PractitionerRole"}


def _path(index: int, loc) -> str:
    out = f"entry[{index}].resource"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("root",):
            out += f".{part}"
    return out


def _codeable_outcome(cc) -> str | None:
    if cc is None:
        return None
    for coding in cc.coding or []:
        system = (coding.system or "").rstrip("/")
        if system == SNOMED and coding.code in SNOMED_OUTCOMES:
            return SNOMED_OUTCOMES[coding.code]
        if system == V3_INTERPRETATION and (coding.code or "").upper() in V3_OUTCOMES:
            return V3_OUTCOMES[coding.code.upper()]
    words = [cc.text] + [c.display for c in cc.coding or []] + [c.code for c in cc.coding or [] if not c.system]
    for word in words:
        if word and word.strip().lower() in OUTCOME_WORDS:
            return OUTCOME_WORDS[word.strip().lower()]
    return None


def _gene(cc) -> str | None:
    if cc is None:
        return None
    for candidate in [cc.text] + [c.display for c in cc.coding or []] + [c.code for c in cc.coding or []]:
        gene = gene_name(candidate or "")
        if gene and (candidate or "").strip():
            return gene
    return None


def _person_name(resource) -> str:
    for name in getattr(resource, "name", None) or []:
        if getattr(name, "text", None):
            return name.text
        parts = [name.family or ""] + list(name.given or [])
        if any(parts):
            return "".join(parts) if any("\u4e00" <= ch <= "\u9fff" for ch in "".join(parts)) else " ".join(
                p for p in list(name.given or []) + [name.family or ""] if p)
    return ""


@dataclass
class _Entry:
    index: int
    resource: object | None  # the validated model (None: invalid)
    type: str


@dataclass
class _Partial:
    """A result being assembled for one tube."""

    index: int
    tube: str
    outcome: str
    ct: dict = field(default_factory=dict)
    operator: str = ""
    instrument: str = ""
    tested_at: dt.datetime | None = None


class _Bundle:
    def __init__(self, entries: list[_Entry], full_urls: dict[str, int]):
        self.entries = entries
        self.by_ref = full_urls  # "urn:uuid:…" / "Specimen/abc" / absolute URL -> entry index

    def resolve(self, reference, owner=None):
        """The resource a Reference points to (in the bundle or contained in ``owner``), or None."""
        if reference is None or not reference.reference:
            return None
        ref = reference.reference
        if ref.startswith("#") and owner is not None:
            for contained in getattr(owner, "contained", None) or []:
                if getattr(contained, "id", None) == ref[1:]:
                    return contained
            return None
        index = self.by_ref.get(ref)
        if index is None and "/" in ref:
            index = self.by_ref.get("/".join(ref.rstrip("/").split("/")[-2:]))
        if index is None:
            return None
        return self.entries[index].resource


def _load(data) -> dict:
    if isinstance(data, dict):
        return data
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationFailed("the FHIR file is not UTF-8 text (FHIR JSON is always UTF-8)",
                                   extra={"field": "file"}) from None
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                               extra={"field": "file", "line": exc.lineno}) from None
    if not isinstance(doc, dict):
        raise ValidationFailed("not a FHIR resource: expected a JSON object with resourceType Bundle",
                               extra={"field": "resourceType"})
    return doc


def parse_bundle(data) -> tuple[list[ResultRow], list[RowError]]:
    """Result rows of a FHIR Bundle (``bytes``, ``str`` or a parsed dict); rows and errors name the entry index."""
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.bundle import Bundle

    doc = _load(data)
    if doc.get("resourceType") != "Bundle":
        raise ValidationFailed(f"resourceType is {doc.get('resourceType')!r}: send a Bundle of Observation / "
                               "DiagnosticReport resources", extra={"field": "resourceType"})
    raw_entries = doc.get("entry")
    if raw_entries is None:
        raw_entries = []
    if not isinstance(raw_entries, list):
        raise ValidationFailed("Bundle.entry must be a list", extra={"field": "entry"})
    shell = {k: v for k, v in doc.items() if k != "entry"}
    shell["entry"] = [{k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
                      for e in raw_entries]
    errors: list[RowError] = []
    try:
        Bundle.model_validate(shell)
    except pydantic.ValidationError as exc:
        bad_entries = set()
        for err in exc.errors():
            loc = err.get("loc", ())
            if len(loc) >= 2 and loc[0] == "entry" and isinstance(loc[1], int):
                bad_entries.add(loc[1])
                rest = ".".join(str(p) for p in loc[2:])
                errors.append(RowError(loc[1], f"entry[{loc[1]}]" + (f".{rest}" if rest else ""), err.get("msg", "")))
            else:
                raise ValidationFailed(safe_text("invalid Bundle: " + "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()[:5])),
                    extra={"field": safe_text(".".join(str(p) for p in loc))}) from None
        raw_entries = [e if i not in bad_entries else {} for i, e in enumerate(raw_entries)]

    entries: list[_Entry] = []
    full_urls: dict[str, int] = {}
    for i, raw in enumerate(raw_entries):
        resource = raw.get("resource") if isinstance(raw, dict) else None
        if not isinstance(resource, dict):
            entries.append(_Entry(i, None, ""))
            if isinstance(raw, dict) and raw and "resource" not in raw and raw.get("request") is None:
                errors.append(RowError(i, f"entry[{i}].resource", "the entry has no resource"))
            continue
        rtype = str(resource.get("resourceType") or "")
        try:
            model = get_fhir_model_class(rtype)
        except (ValueError, KeyError):
            errors.append(RowError(i, f"entry[{i}].resource.resourceType", f"unknown resource type {rtype!r}"))
            entries.append(_Entry(i, None, rtype))
            continue
        try:
            validated = model.model_validate(resource)
        except pydantic.ValidationError as exc:
            for err in exc.errors()[:10]:
                errors.append(RowError(i, _path(i, err.get("loc", ())), err.get("msg", "invalid")))
            entries.append(_Entry(i, None, rtype))
            continue
        except (TypeError, ValueError) as exc:
            errors.append(RowError(i, f"entry[{i}].resource", str(exc)[:300]))
            entries.append(_Entry(i, None, rtype))
            continue
        entries.append(_Entry(i, validated, rtype))
        if raw.get("fullUrl"):
            full_urls[str(raw["fullUrl"])] = i
        if resource.get("id"):
            full_urls[f"{rtype}/{resource['id']}"] = i
    bundle = _Bundle(entries, full_urls)
    return _assemble(bundle, errors)


def _specimen_barcode(bundle: _Bundle, reference, owner) -> str | None:
    if reference is None:
        return None
    if reference.identifier is not None and reference.identifier.value:
        return reference.identifier.value.strip()
    specimen = bundle.resolve(reference, owner)
    if specimen is None or type(specimen).__name__ != "Specimen":
        return None
    if specimen.accessionIdentifier is not None and specimen.accessionIdentifier.value:
        return specimen.accessionIdentifier.value.strip()
    for ident in specimen.identifier or []:
        if ident.value:
            return ident.value.strip()
    return None


def _operator(bundle: _Bundle, performers, owner) -> str:
    for ref in performers or []:
        if ref.display:
            return ref.display.strip()
        target = bundle.resolve(ref, owner)
        if target is not None:
            name = _person_name(target)
            if name:
                return name
            practitioner = getattr(target, "practitioner", None)  # PractitionerRole
            if practitioner is not None:
                return _operator(bundle, [practitioner], owner)
        if ref.identifier is not None and ref.identifier.value:
            return ref.identifier.value.strip()
    return ""


def _instrument(bundle: _Bundle, ref, owner) -> str:
    if ref is None:
        return ""
    if ref.display:
        return ref.display.strip()
    device = bundle.resolve(ref, owner)
    if device is not None:
        for name in getattr(device, "deviceName", None) or []:
            if name.name:
                return name.name.strip()
        for ident in getattr(device, "identifier", None) or []:
            if ident.value:
                return ident.value.strip()
        if getattr(device, "serialNumber", None):
            return device.serialNumber
    if ref.identifier is not None and ref.identifier.value:
        return ref.identifier.value.strip()
    return ""


def _time(resource) -> dt.datetime | None | str:
    """The test time of an Observation / DiagnosticReport (a string: the reason it is unusable)."""
    value = getattr(resource, "effectiveDateTime", None)
    if value is None:
        value = getattr(resource, "effectiveInstant", None)
    if value is None:
        value = getattr(resource, "issued", None)
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        return "effectiveDateTime must include a time of day and a UTC offset"
    if value.tzinfo is None:
        return "effectiveDateTime must include a UTC offset"
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        return f"{value.isoformat()} is out of range"


def _assemble(bundle: _Bundle, errors: list[RowError]) -> tuple[list[ResultRow], list[RowError]]:
    # Defaults from DiagnosticReports for the Observations they list.
    inherited: dict[int, object] = {}
    for entry in bundle.entries:
        if entry.type == "DiagnosticReport" and entry.resource is not None:
            for ref in entry.resource.result or []:
                target = ref.reference and bundle.by_ref.get(ref.reference)
                if target is not None and target not in inherited:
                    inherited[target] = entry.resource

    results: dict[str, _Partial] = {}
    cts: list[tuple[int, str, str, float]] = []  # (entry, tube, gene, value) of separate Ct observations
    report_outcomes: dict[int, str] = {}  # DiagnosticReport entry -> tube having an outcome from its results

    def tube_of(entry: _Entry, resource, report) -> str | None:
        specimen = getattr(resource, "specimen", None)
        if isinstance(specimen, list):  # DiagnosticReport.specimen is a list
            specimen = specimen[0] if specimen else None
        barcode = _specimen_barcode(bundle, specimen, resource)
        if barcode is None and report is not None:
            barcode = _specimen_barcode(bundle, (report.specimen or [None])[0], report)
        return barcode

    for entry in bundle.entries:
        r = entry.resource
        if r is None or entry.type != "Observation":
            continue
        i = entry.index
        report = inherited.get(i)
        if (r.status or "") not in FINAL_STATUSES:
            errors.append(RowError(i, f"entry[{i}].resource.status",
                                   f"status {r.status!r} is not a final result (final, amended or corrected)"))
            continue
        tube = tube_of(entry, r, report)
        if not tube:
            errors.append(RowError(i, f"entry[{i}].resource.specimen",
                                   "no tube barcode: give specimen.identifier.value or a reference to a Specimen of "
                                   "the bundle with an accessionIdentifier"))
            continue
        if r.valueQuantity is not None and r.valueCodeableConcept is None:
            gene = _gene(r.code)
            if gene is None:
                errors.append(RowError(i, f"entry[{i}].resource.code", "a quantity observation must name its target "
                                                                        "gene in code.text (ORF1ab, N, E, …)", tube))
                continue
            try:
                value = parse_ct(r.valueQuantity.value)
            except ValueError as exc:
                errors.append(RowError(i, f"entry[{i}].resource.valueQuantity.value", str(exc), tube))
                continue
            if value is not None:
                cts.append((i, tube, gene, value))
            continue
        outcome = _codeable_outcome(r.valueCodeableConcept)
        if outcome is None:
            where = "valueCodeableConcept" if r.valueCodeableConcept is not None else "value[x]"
            errors.append(RowError(i, f"entry[{i}].resource.{where}",
                                   "no recognised result: SNOMED CT 260385009/10828004/455371000124106 or the text "
                                   "negative/positive/invalid (阴性/阳性/无效)", tube))
            continue
        partial = _Partial(i, tube, outcome)
        bad = False
        for k, comp in enumerate(r.component or []):
            if comp.valueQuantity is None:
                continue
            gene = _gene(comp.code)
            if gene is None:
                errors.append(RowError(i, f"entry[{i}].resource.component[{k}].code",
                                       "name the target gene in code.text (ORF1ab, N, E, …)", tube))
                bad = True
                continue
            try:
                value = parse_ct(comp.valueQuantity.value)
            except ValueError as exc:
                errors.append(RowError(i, f"entry[{i}].resource.component[{k}].valueQuantity.value", str(exc), tube))
                bad = True
                continue
            if value is not None:
                partial.ct[gene] = value
        when = _time(r)
        if when is None and report is not None:
            when = _time(report)
        if isinstance(when, str):
            errors.append(RowError(i, f"entry[{i}].resource.effectiveDateTime", when, tube))
            bad = True
        if bad:
            continue
        partial.tested_at = when
        partial.operator = _operator(bundle, r.performer, r) or (
            _operator(bundle, report.performer, report) if report is not None else "")
        partial.instrument = _instrument(bundle, r.device, r)
        if tube in results:
            other = results[tube]
            if (other.outcome, other.ct) != (partial.outcome, partial.ct):
                errors.append(RowError(i, f"entry[{i}].resource", f"tube {tube} already has a different result in "
                                                                    f"entry {other.index}: neither is applied", tube))
                errors.append(RowError(other.index, f"entry[{other.index}].resource",
                                       f"tube {tube} has a different result in entry {i}: neither is applied", tube))
                results[tube] = _Partial(-1, tube, "")  # poisoned
            continue
        results[tube] = partial
        if report is not None:
            report_outcomes[id(report)] = tube

    # DiagnosticReports that carry the outcome themselves.
    for entry in bundle.entries:
        r = entry.resource
        if r is None or entry.type != "DiagnosticReport" or id(r) in report_outcomes or not r.conclusionCode:
            continue
        i = entry.index
        outcome = None
        for cc in r.conclusionCode:
            outcome = outcome or _codeable_outcome(cc)
        if outcome is None:
            continue
        tube = tube_of(entry, r, None)
        if not tube:
            errors.append(RowError(i, f"entry[{i}].resource.specimen", "no tube barcode in the report's specimen"))
            continue
        when = _time(r)
        if isinstance(when, str):
            errors.append(RowError(i, f"entry[{i}].resource.effectiveDateTime", when, tube))
            continue
        if tube not in results:
            results[tube] = _Partial(i, tube, outcome, tested_at=when, operator=_operator(bundle, r.performer, r))

    for i, tube, gene, value in cts:
        partial = results.get(tube)
        if partial is None:
            errors.append(RowError(i, f"entry[{i}].resource", f"a Ct value for tube {tube} without a result "
                                                               "(no Observation with valueCodeableConcept for it)", tube))
        elif partial.index >= 0:
            partial.ct.setdefault(gene, value)

    rows = [ResultRow(p.index, p.tube, p.outcome, p.ct, p.instrument, p.operator, p.tested_at)
            for p in results.values() if p.index >= 0]
    rows.sort(key=lambda r: r.row)
    return rows, errors
