"""The purpose catalog (R1, R5, R6, R11). Impact assessments (R10) live in ``service.domain.assessments``;
their names are kept here for the callers that import them from the catalog."""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.domain.assessments import assessment_is_current as assessment_is_current
from service.domain.assessments import mark_assessments_outdated
from service.domain.assessments import record_assessment as record_assessment
from service.domain.audit import canonical_json, record_event
from service.domain.consent_lifecycle import lock_purpose
from service.domain.deletions import owe_deletions
from service.domain.pages import Page, page
from service.domain.statuses import ConsentStatus
from service.domain.wording import is_real_text, names_any
from service.errors import Conflict, NotFound, Unprocessable
from service.models import Consent, Notice, Organization, Purpose, utcnow

#: Where a face is captured: a fixed camera or terminal of the organization's (a registered device), or
#: the person's own phone.
CAPTURES = ("device", "personal_device")
#: What a person reads about a purpose (R1), each a locale map ``{"zh-CN": …, "en": …}``.
LOCALIZED_FIELDS = ("name", "description", "necessity", "alternative", "processing_method", "rights_impact")

#: The analyses a purpose may declare (R11): a closed list, in its canonical spelling.
ANALYSES = ("liveness", "verification_1to1", "identification_1toN", "age_estimation", "quality_check")
_ANALYSES_BY_KEY = {name.lower(): name for name in ANALYSES}

#: Words naming what the draft Provisions forbid inferring from a face (R11): race, ethnicity, religion,
#: health, social class, and their synonyms, in English (whole words, or their start) and Chinese (anywhere).
PROHIBITED_WORDS = (
    "race", "racial", "ethnic", "religio", "faith", "belief", "health", "disease", "illness", "medical",
    "disabilit", "skin", "caste", "class", "socioeconomic", "income", "wealth", "poverty",
)  # fmt: skip
PROHIBITED_CHINESE = (
    "种族", "民族", "人种", "肤色", "宗教", "信仰", "健康", "疾病", "病", "残疾", "医疗",
    "阶层", "阶级", "社会地位", "收入", "贫困", "财富",
)  # fmt: skip


def normalize_analysis(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).strip().lower()
    return "_".join(folded.replace("-", " ").split())


def names_prohibited_inference(analysis: str) -> bool:
    """Whether ``analysis`` names a prohibited inference, in either language, however spelled."""
    return names_any(analysis, english=PROHIBITED_WORDS, chinese=PROHIBITED_CHINESE)


def check_analyses(analyses: list[str], *, prohibit_sensitive_analysis: bool) -> list[str]:
    """The declared analyses in their canonical spelling: 422 ``prohibited_analysis`` for any naming a
    prohibited inference, 422 ``unknown_analysis`` for any other outside the list."""
    prohibited = sorted({a for a in analyses if names_prohibited_inference(a)})
    if prohibited and prohibit_sensitive_analysis:
        raise Unprocessable(
            "inferring race, ethnicity, religion, health or social class from a face is prohibited",
            code="prohibited_analysis",
            details={"analyses": prohibited},
        )
    unknown = sorted({a for a in analyses if normalize_analysis(a) not in _ANALYSES_BY_KEY and a not in prohibited})
    if unknown:
        raise Unprocessable(
            f"unknown analysis: declare only {', '.join(ANALYSES)}",
            code="unknown_analysis",
            details={"analyses": unknown},
        )
    return [_ANALYSES_BY_KEY.get(normalize_analysis(a), normalize_analysis(a)) for a in analyses]


ALTERNATIVE_MIN_LENGTH = 4


def check_alternative(texts: dict[str, str] | str) -> dict[str, str] | str:
    """A real non-biometric alternative (R6), in every locale given: 422 ``alternative_required`` for a
    placeholder or under 4 characters."""
    given = {"": texts} if isinstance(texts, str) else texts
    refused = sorted(locale for locale, text in given.items() if not _is_real_alternative(text))
    if refused or not given:
        raise Unprocessable(
            "describe the non-biometric alternative offered instead (at least 4 characters, not a placeholder)",
            code="alternative_required",
            details={
                "alternative": [
                    f"not a real alternative: {locale}" if locale else "not a real alternative"
                    for locale in refused or [""]
                ]
            },
        )
    return texts


def _is_real_alternative(text: str) -> bool:
    """Not a placeholder that offers no alternative at all (R6), however punctuated or cased."""
    return is_real_text(text, min_length=ALTERNATIVE_MIN_LENGTH)


def check_locales(fields: dict[str, Any], required: tuple[str, ...]) -> None:
    """Every person-facing text in every required locale (R1): 422 ``missing_locale`` naming what lacks which.

    ``fields`` holds locale maps (a purpose's texts, or a notice's ``texts``); blank texts count as missing.
    """
    missing = {
        name: [locale for locale in required if not str(texts.get(locale) or "").strip()]
        for name, texts in fields.items()
        if isinstance(texts, dict)
    }
    missing = {name: locales for name, locales in missing.items() if locales}
    if missing:
        raise Unprocessable(
            f"give every text people read in {', '.join(required)}",
            code="missing_locale",
            details={name: [f"missing {', '.join(locales)}"] for name, locales in sorted(missing.items())},
        )


def in_locale(texts: dict[str, str], locale: str, preferred: tuple[str, ...] = ("zh-CN", "en")) -> tuple[str, str]:
    """The text in ``locale``, else in the first of ``preferred`` given, else any: ``(text, its locale)``."""
    for candidate in (locale, *preferred):
        if texts.get(candidate):
            return texts[candidate], candidate
    for candidate, text in texts.items():
        if text:
            return text, candidate
    return "", locale


def purpose_terms(purpose: Purpose) -> dict[str, Any]:
    """What a person is told about a purpose: the same terms in the notice digest and in receipts."""
    return {
        "code": purpose.code,
        "name": purpose.name,
        "description": purpose.description,
        "category": purpose.category,
        "necessity": purpose.necessity,
        "alternative": purpose.alternative,
        "processing_method": purpose.processing_method,
        "rights_impact": purpose.rights_impact,
        "capture": purpose.capture,
        "retention_days": purpose.retention_days,
        "analyses": list(purpose.analyses),
        "transmits_face_data": purpose.transmits_face_data,
    }


def notice_digest(org: Organization, purpose: Purpose, version: int, texts: dict[str, str]) -> str:
    """SHA-256 over everything the person is told (R1): who (and whom to ask or complain to), what for, how,
    with what effect on their rights, how long, why, the alternative, in every locale."""
    document = {
        "controller": org.controller(),
        "purpose": purpose_terms(purpose),
        "version": version,
        "texts": texts,
    }
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def get_purpose(session: Session, *, org_id: str, code: str) -> Purpose:
    purpose = session.scalars(select(Purpose).where(Purpose.org_id == org_id, Purpose.code == code)).first()
    if purpose is None:
        raise NotFound(f"purpose {code!r} does not exist")
    return purpose


def list_purposes(session: Session, *, org_id: str, cursor: str | None, limit: int) -> Page[Purpose]:
    """The organization's purposes, oldest first."""
    query = select(Purpose).where(Purpose.org_id == org_id)
    return page(session, query, Purpose, kind="purposes", cursor=cursor, limit=limit)


def create_purpose(
    session: Session,
    *,
    org_id: str,
    actor: str,
    prohibit_sensitive_analysis: bool,
    required_locales: tuple[str, ...],
    fields: dict[str, Any],
) -> Purpose:
    check_locales({name: fields[name] for name in (*LOCALIZED_FIELDS, "notice")}, required_locales)
    analyses = check_analyses(fields.get("analyses", []), prohibit_sensitive_analysis=prohibit_sensitive_analysis)
    check_alternative(fields["alternative"])
    if fields["capture"] not in CAPTURES:
        raise Unprocessable("capture is device or personal_device", code="validation_error")
    existing = session.scalars(
        select(Purpose.id).where(Purpose.org_id == org_id, Purpose.code == fields["code"])
    ).first()
    if existing is not None:
        raise Conflict(f"purpose {fields['code']!r} already exists", code="purpose_exists")
    org = session.get(Organization, org_id)
    assert org is not None
    purpose = Purpose(
        org_id=org_id,
        code=fields["code"],
        name=fields["name"],
        description=fields["description"],
        category=fields["category"],
        necessity=fields["necessity"],
        alternative=fields["alternative"],
        processing_method=fields["processing_method"],
        rights_impact=fields["rights_impact"],
        capture=fields["capture"],
        retention_days=fields["retention_days"],
        analyses=analyses,
        transmits_face_data=fields.get("transmits_face_data", False),
        notice_version=1,
    )
    session.add(purpose)
    session.flush()
    notice = Notice(
        purpose_id=purpose.id,
        version=1,
        texts=fields["notice"],
        material=True,
        digest=notice_digest(org, purpose, 1, fields["notice"]),
    )
    session.add(notice)
    session.flush()
    session.refresh(purpose, ["notices"])
    record_event(
        session,
        org_id=org_id,
        actor=actor,
        action="purpose.created",
        object_type="purpose",
        object_id=purpose.id,
        data={
            "code": purpose.code,
            "category": purpose.category,
            "capture": purpose.capture,
            "retention_days": purpose.retention_days,
            "notice_version": 1,
            "notice_digest": notice.digest,
        },
    )
    return purpose


def publish_notice(
    session: Session,
    *,
    org_id: str,
    actor: str,
    code: str,
    texts: dict[str, str],
    material: bool,
    required_locales: tuple[str, ...] = (),
    terms: dict[str, dict[str, str]] | None = None,
) -> Notice:
    """Add a notice version. A material change moves every active consent to ``reconsent_required`` (R5).

    ``terms`` may restate any of the purpose's texts (:data:`LOCALIZED_FIELDS`) with the new notice: they
    take effect with it and its digest covers them (R1). That is how a purpose created before a field
    existed comes to state it.

    The purpose row is locked first (``FOR NO KEY UPDATE``): grants hold it ``FOR SHARE`` while they bind a
    consent to the current notice (``consent_lifecycle.take_notice``), so a grant racing this change
    either commits first and is moved here, or waits and then sees the new version.
    """
    restated = {name: value for name, value in (terms or {}).items() if name in LOCALIZED_FIELDS}
    check_locales({"texts": texts, **restated}, required_locales)
    if "alternative" in restated:
        check_alternative(restated["alternative"])
    purpose = lock_purpose(session, get_purpose(session, org_id=org_id, code=code).id, exclusive=True)
    org = session.get(Organization, org_id)
    assert org is not None
    for name, value in restated.items():
        setattr(purpose, name, value)
    version = purpose.notice_version + 1
    notice = Notice(
        purpose_id=purpose.id,
        version=version,
        texts=texts,
        material=material,
        digest=notice_digest(org, purpose, version, texts),
    )
    session.add(notice)
    purpose.notice_version = version
    session.flush()
    session.refresh(purpose, ["notices"])
    record_event(
        session,
        org_id=org_id,
        actor=actor,
        action="notice.published",
        object_type="purpose",
        object_id=purpose.id,
        data={
            "code": code,
            "version": version,
            "digest": notice.digest,
            "material": material,
            "restated": sorted(restated),
        },
    )
    if material:
        mark_assessments_outdated(session, purpose, reason=f"material notice change (version {version})", actor=actor)
        moved_at = utcnow()
        affected = session.execute(
            update(Consent)
            .where(Consent.purpose_id == purpose.id, Consent.status == ConsentStatus.ACTIVE)
            .values(status=ConsentStatus.RECONSENT_REQUIRED.value, updated_at=moved_at)
            .returning(Consent.id, Consent.subject_id)
            .execution_options(synchronize_session=False)
        ).all()
        # Paused consents permit no processing: each key allowed to use one owes its deletion (R13).
        owe_deletions(session, [(consent_id, org_id, moved_at) for consent_id, _ in affected])
        for consent_id, subject_id in affected:
            record_event(
                session,
                org_id=org_id,
                actor=actor,
                action="consent.reconsent_required",
                object_type="consent",
                object_id=consent_id,
                data={"subject_id": subject_id, "purpose": code, "notice_version": version},
            )
    return notice
