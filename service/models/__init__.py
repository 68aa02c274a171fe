"""SQLAlchemy models. Importing this package registers every table on ``Base.metadata``."""

from service.models.audit import AuditEvent, AuditHead
from service.models.checkpoints import AuditCheckpoint
from service.models.consents import Consent
from service.models.devices import Device
from service.models.filings import Filing, FilingCount
from service.models.guardian import GuardianLink, GuardianRequest, SmsMessage
from service.models.organizations import ApiKey, Organization
from service.models.purposes import Assessment, Notice, Purpose, assessment_purposes
from service.models.status_lists import STATUS_LIST_SIZE, StatusList
from service.models.subjects import Subject
from service.models.types import new_id, new_sequential_id, utcnow
from service.models.verifications import Verification

__all__ = [
    "STATUS_LIST_SIZE",
    "ApiKey",
    "Assessment",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditHead",
    "Consent",
    "Device",
    "Filing",
    "FilingCount",
    "GuardianLink",
    "GuardianRequest",
    "Notice",
    "Organization",
    "Purpose",
    "SmsMessage",
    "StatusList",
    "Subject",
    "Verification",
    "assessment_purposes",
    "new_id",
    "new_sequential_id",
    "utcnow",
]
