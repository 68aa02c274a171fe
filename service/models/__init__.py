"""SQLAlchemy models. Importing this package registers every table on ``Base.metadata``."""

from service.models.audit import AuditEvent, AuditHead
from service.models.checkpoints import AuditCheckpoint
from service.models.consents import Consent
from service.models.deletions import Deletion
from service.models.devices import Device
from service.models.filings import Filing, FilingCount
from service.models.guardian import GuardianLink, GuardianRequest, SmsMessage
from service.models.incidents import Incident, incident_purposes
from service.models.organizations import ApiKey, Organization
from service.models.outbox import OutboxMessage, Webhook
from service.models.purposes import Assessment, Notice, Purpose, assessment_purposes
from service.models.rights import AccessLink, RightsRequest
from service.models.status_lists import STATUS_LIST_SIZE, StatusList
from service.models.subjects import Subject
from service.models.types import new_id, new_sequential_id, utcnow
from service.models.verifications import Verification

__all__ = [
    "STATUS_LIST_SIZE",
    "AccessLink",
    "ApiKey",
    "Assessment",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditHead",
    "Consent",
    "Deletion",
    "Device",
    "Filing",
    "FilingCount",
    "GuardianLink",
    "GuardianRequest",
    "Incident",
    "Notice",
    "Organization",
    "OutboxMessage",
    "Purpose",
    "RightsRequest",
    "SmsMessage",
    "StatusList",
    "Subject",
    "Verification",
    "Webhook",
    "assessment_purposes",
    "incident_purposes",
    "new_id",
    "new_sequential_id",
    "utcnow",
]
