"""Examples and error codes of every operation, as the spec shows them (``service.api.documentation``).

An entry per operation, keyed ``"METHOD /path"`` with the path as the spec writes it
(``/v1/consents/{consent_id}``): ``request``, the JSON body of an operation that takes one; ``response``,
its success answer (JSON, or the text of a text answer); ``media``, that answer's media type when the view
documents it without a schema; ``errors``, the error codes it can answer beyond those its statuses always
stand for (``documentation.DEFAULT_CODES``: 401 ``unauthorized``, 404 ``not_found``, 422
``validation_error`` ...) and those every operation of its kind answers, which the plugin adds itself
(``documentation.implied_codes``: a list's 422 ``invalid_cursor``, the rate limiter's 429, the database's
503). Each code's status comes from ``service.error_catalogue``.

``tests/test_spec_examples.py`` fails for an operation without an entry, for a request example its schema
does not load, for an answer its schema does not load, and for a code missing from the catalogue. The
examples were taken from a real run and are sent to the app by that test: keep them realistic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Operation:
    request: Any = None
    response: Any = None
    errors: tuple[str, ...] = ()
    #: The media type of a success answer its view documents without a schema: a text answer (whose
    #: ``response`` is its text), a binary one (no example), a free-form JSON object (the default).
    media: str | None = None
    #: Other media types the success answer may take (``?format=csv``), each with its example.
    other_media: tuple[tuple[str, Any], ...] = ()


#: A consent token as issued, signed by a key that signs nothing else.
CONSENT_JWT = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6IlE5T3lrLVVxQkFwcW0yMTdjYVZtZmdoMlExckV3OFNwcDM5YXc0REYxYzQiLCJ0eXAiOiJj"
    "b25zZW50K2p3dCJ9.eyJpc3MiOiJodHRwczovL2NvbnNlbnQuZXhhbXBsZS5jbiIsInN1YiI6IjgwMjZlMWNmLThmYTQtNDVjOS0"
    "4ZGEwLThiMGVhOTA2ZGRlZCIsImF1ZCI6Ijk1NjM0NTdjLWU5NjItNDc4MC1hNjNjLTY0Zjg3NWUxNGIyNiIsImp0aSI6ImNhMGJ"
    "hZDA3LTdkZDMtNDdiOS04M2ExLTk4MGUyNjhkMWYxNSIsInB1ciI6ImRvb3JfYWNjZXNzIiwiaWF0IjoxNzk1Nzk3MDU0LCJleHA"
    "iOjE4MDM1NzMwNTQsImdyZCI6ZmFsc2UsIm50YyI6ImM4MDBlMGFiY2MxNGEzNWEzODUwOGU1ZjVjYjcwOGNmNThhOGM2ZWM2NjZ"
    "kZGZkYzE0N2ZmYmI5NTVmNTg0YWMiLCJzdGF0dXMiOnsic3RhdHVzX2xpc3QiOnsiaWR4IjowLCJ1cmkiOiJodHRwczovL2NvbnN"
    "lbnQuZXhhbXBsZS5jbi92MS9zdGF0dXMtbGlzdHMvNjZmZmVlNmMtODY0NS00OWYyLTgzZWEtZWM1N2NlNWU2NDczIn19fQ.2kiR"
    "IgIEcXzBsy3OyJzsIzrr06JLiRehwUtTnkUMOfUhHk0ZezSRcefEzr_YPbY9hPBU4ZPQKxuuCBVzQIj9EQ"
)

RECEIPT_JWS = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6IlE5T3lrLVVxQkFwcW0yMTdjYVZtZmdoMlExckV3OFNwcDM5YXc0REYxYzQiLCJ0eXAiOiJj"
    "b25zZW50LXJlY2VpcHQrandzIn0.eyJjb2xsZWN0aW9uIjp7ImNoYW5uZWwiOiJtb2JpbGVfYXBwIiwibWV0aG9kIjoiY2hlY2ti"
    "b3giLCJyZWNvcmRlZF9hdCI6IjIwMjYtMTEtMjdUMTY6MzA6NTQuODA5NjQ1KzAwOjAwIn0sImNvbnNlbnQiOnsiZ3JhbnRlZF9h"
    "dCI6IjIwMjYtMTEtMjdUMTY6MzA6NTQuODA5NjQ1KzAwOjAwIiwiZ3VhcmRpYW5fYXV0aG9yaXplZCI6ZmFsc2UsInN0YXR1cyI6"
    "ImFjdGl2ZSIsInR5cGUiOiJleHBsaWNpdCwgc2VwYXJhdGUifSwiY29udHJvbGxlciI6eyJjb250YWN0IjoicHJpdmFjeUBzdW5y"
    "aXNlLmV4YW1wbGUiLCJpZCI6Ijk1NjM0NTdjLWU5NjItNDc4MC1hNjNjLTY0Zjg3NWUxNGIyNiIsIm5hbWUiOiLpmLPlhYnlsI_l"
    "raYgU3VucmlzZSBQcmltYXJ5IFNjaG9vbCJ9LCJldmVudHMiOlt7ImF0IjoiMjAyNi0xMS0yN1QxNjozMDo1NC44MjI4NTUrMDA6"
    "MDAiLCJhdWRpdF9oYXNoIjoiMzY2NDlkNzY4MmYxZGU2NDQ2ZDQyZDYwM2ZhOGQxNWI2MzExMzY1YTBiNmJlNTEyZGRiOTY2ZjRm"
    "MDM5NTI0OSIsImF1ZGl0X3NlcSI6MTEsInR5cGUiOiJjb25zZW50LmdyYW50ZWQifV0sImlzc3VlZF9hdCI6IjIwMjYtMTEtMjdU"
    "MTY6MzA6NTQuODM4OTYyKzAwOjAwIiwianVyaXNkaWN0aW9uIjoiQ04iLCJsZWdhbF9iYXNpcyI6InNlcGFyYXRlIGNvbnNlbnQg"
    "KFBJUEwgQXJ0LiAxNCwgMjkpIiwibm90aWNlIjp7ImRpZ2VzdCI6ImM4MDBlMGFiY2MxNGEzNWEzODUwOGU1ZjVjYjcwOGNmNThh"
    "OGM2ZWM2NjZkZGZkYzE0N2ZmYmI5NTVmNTg0YWMiLCJsYW5ndWFnZSI6InpoLUNOIiwidmVyc2lvbiI6Mn0sInBlcnNvbmFsX2Rh"
    "dGEiOnsiY2F0ZWdvcmllcyI6WyJmYWNpYWxfcmVjb2duaXRpb25fZGF0YSJdLCJzZW5zaXRpdmUiOnRydWV9LCJwdXJwb3NlIjp7"
    "ImFsdGVybmF0aXZlIjp7ImVuIjoiQSBzdHVkZW50IGNhcmQgb3BlbnMgdGhlIHNhbWUgZ2F0ZSIsInpoLUNOIjoi5Yi35a2m55Sf"
    "5Y2h5ZCM5qC35Y-v5Lul5byA5ZCv5qCh6ZeoIn0sImFuYWx5c2VzIjpbImxpdmVuZXNzIl0sImNhcHR1cmUiOiJwZXJzb25hbF9k"
    "ZXZpY2UiLCJjYXRlZ29yeSI6ImFjY2Vzc19jb250cm9sIiwiY29kZSI6ImRvb3JfYWNjZXNzIiwiZGVzY3JpcHRpb24iOnsiZW4i"
    "OiJPcGVuaW5nIHRoZSBzY2hvb2wgZ2F0ZSBieSBmYWNlIiwiemgtQ04iOiLliLfohLjmiZPlvIDmoKHpl6gifSwibmFtZSI6eyJl"
    "biI6IkRvb3IgYWNjZXNzIiwiemgtQ04iOiLmoKHpl6jpgJrooYwifSwibmVjZXNzaXR5Ijp7ImVuIjoiU3RhZmYgY2Fubm90IGNo"
    "ZWNrIGV2ZXJ5IHN0dWRlbnQgYnkgc2lnaHQgYXQgcGVhayBob3VycyIsInpoLUNOIjoi6auY5bOw5pe25q615pWZ6IGM5bel5peg"
    "5rOV6YCQ5LiA5qC45a-55q-P5L2N5a2m55SfIn0sInByb2Nlc3NpbmdfbWV0aG9kIjp7ImVuIjoiVGhlIGdhdGUgY2FtZXJhIHRh"
    "a2VzIGEgcGljdHVyZSwgY29tcGFyZXMgaXQgd2l0aCB0aGUgZW5yb2xsZWQgcGhvdG8gYW5kIGRlbGV0ZXMgaXQgYXQgb25jZTsg"
    "dGhlIHRlbXBsYXRlIGlzIHN0b3JlZCBlbmNyeXB0ZWQgb24gdGhlIHNjaG9vbCdzIHNlcnZlci4iLCJ6aC1DTiI6IumXuOacuuaR"
    "hOWDj-WktOaLjeaRhOS6uuiEuO-8jOS4jueZu-iusOeFp-eJh-avlOWvueWQjueri-WNs-WIoOmZpOaKk-aLjeWbvuWDj--8m-eJ"
    "ueW-geWAvOWKoOWvhuS_neWtmOWcqOWtpuagoeacjeWKoeWZqOOAgiJ9LCJyZXRlbnRpb25fZGF5cyI6OTAsInJpZ2h0c19pbXBh"
    "Y3QiOnsiZW4iOiJGYWNlIGRhdGEgaXMgc2Vuc2l0aXZlIGFuZCBjYW5ub3QgYmUgY2hhbmdlZCBpZiBsZWFrZWQuIFlvdSBtYXkg"
    "YWNjZXNzLCBjb3JyZWN0IG9yIGRlbGV0ZSBpdCwgb3Igd2l0aGRyYXcgY29uc2VudCwgYXQgYW55IHRpbWUuIiwiemgtQ04iOiLk"
    "urrohLjkv6Hmga_lsZ7kuo7mlY_mhJ_kuKrkurrkv6Hmga_vvIzkuIDml6bms4TpnLLpmr7ku6Xmm7TmlLnjgILmgqjlj6_pmo_m"
    "l7bmn6XpmIXjgIHmm7TmraPjgIHliKDpmaTmiJbmkqTlm57lkIzmhI_jgIIifSwidHJhbnNtaXRzX2ZhY2VfZGF0YSI6ZmFsc2V9"
    "LCJyZWNlaXB0X2lkIjoiMTRhOGZkY2MtYzc5ZC01ZGM1LThjZjItNmFiNWIzNGY0NTBkIiwicmVjb3JkX2lkIjoiY2EwYmFkMDct"
    "N2RkMy00N2I5LTgzYTEtOTgwZTI2OGQxZjE1IiwicmV0ZW50aW9uIjp7ImRheXMiOjkwLCJlbmRzX2F0IjoiMjAyNy0wMi0yNVQx"
    "NjozMDo1NC44MDk2NDUrMDA6MDAifSwic2NoZW1hIjoiSVNPL0lFQyBUUyAyNzU2MDoyMDIzIGNvbnNlbnQgcmVjb3JkIiwic3Vi"
    "amVjdCI6eyJndWFyZGlhbiI6bnVsbCwiaWQiOiI4MDI2ZTFjZi04ZmE0LTQ1YzktOGRhMC04YjBlYTkwNmRkZWQifSwid2l0aGRy"
    "YXdhbCI6eyJjb250YWN0IjoicHJpdmFjeUBzdW5yaXNlLmV4YW1wbGUiLCJlZmZlY3RpdmUiOiJpbW1lZGlhdGVseSIsIm1ldGhv"
    "ZCI6ImF0IGFueSB0aW1lOiBQT1NUIC92MS9jb25zZW50cy97aWR9L3Jldm9rZSB0aHJvdWdoIHRoZSBvcmdhbml6YXRpb24sIHRo"
    "ZSBndWFyZGlhbidzIHdpdGhkcmF3YWwgbGluaywgb3IgdGhlIG9yZ2FuaXphdGlvbidzIGNvbnRhY3QifX0.pEZq0WcVMMNbom7-"
    "WCV2u0r75d5QYefh_hTUhi-VDKoIv4vrUrBtxVfGrKwZyQZaeJAstZOBxuGhqIBpkemQQQ"
)

#: A status list as served: a ``statuslist+jwt`` signed with the consent-token key.
STATUS_LIST_JWT = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6IlE5T3lrLVVxQkFwcW0yMTdjYVZtZmdoMlExckV3OFNwcDM5YXc0REYxYzQiLCJ0eXAiOiJz"
    "dGF0dXNsaXN0K2p3dCJ9.eyJzdWIiOiJodHRwczovL2NvbnNlbnQuZXhhbXBsZS5jbi92MS9zdGF0dXMtbGlzdHMvNjZmZmVlNmM"
    "tODY0NS00OWYyLTgzZWEtZWM1N2NlNWU2NDczIiwiaWF0IjoxNzk1Nzk3MDU0LCJleHAiOjE3OTU3OTcxMTQsInR0bCI6NjAsInN"
    "0YXR1c19saXN0Ijp7ImJpdHMiOjEsImxzdCI6ImVOcmJ1UmdBQWhjQlhRIn19.2kiRIgIEcXzBsy3OyJzsIzrr06JLiRehwUtTnk"
    "UMOfUhHk0ZezSRcefEzr_YPbY9hPBU4ZPQKxuuCBVzQIj9EQ"
)

ASSESSMENT_LINE = (
    '{"id": "638a6073-a395-4490-a1e9-7c5f09c90d0b", "purposes": ["door_access"], "conducted_at": "2026-11-27", '
    '"valid_until": "2027-11-27", "lawfulness_necessity": "Door access by face is lawful with separate consent; a '
    'card is offered instead.", "rights_impact": "A person\'s face template is processed; anyone may refuse and use '
    'the card.", "security_risks": "Templates could leak from terminals or be matched against other databases.", '
    '"safeguards": "On-device templates, encrypted transport, 90-day retention, no transmission.", "conclusion": '
    '"Proceed: the risks are low and the safeguards fit them.", "outdated_at": null, "outdated_reason": null, '
    '"created_at": "2026-11-27T16:33:37+00:00"}\n'
)

AUDIT_LINE = (
    '{"action": "organization.created", "actor": "cli", "data": {"name": "阳光小学 Sunrise Primary School"}, '
    '"hash": "fee9720dff91f7fd4ccfdf3f171985fb34d4e4b9fbb8f297deb8f05bb695b19a", '
    '"object_id": "e8074a9c-f720-4d81-a489-5f297b253ed0", "object_type": "organization", '
    '"occurred_at": "2026-11-27T16:33:37+00:00", "org_id": "e8074a9c-f720-4d81-a489-5f297b253ed0", '
    '"prev_hash": "0000000000000000000000000000000000000000000000000000000000000000", "seq": 1}\n'
)

AUDIT_CSV = (
    "org_id,seq,occurred_at,actor,action,object_type,object_id,data,prev_hash,hash\n"
    "e8074a9c-f720-4d81-a489-5f297b253ed0,1,2026-11-27T16:33:37+00:00,cli,organization.created,organization,"
    'e8074a9c-f720-4d81-a489-5f297b253ed0,"{""name"": ""阳光小学 Sunrise Primary School""}",'
    "0000000000000000000000000000000000000000000000000000000000000000,"
    "fee9720dff91f7fd4ccfdf3f171985fb34d4e4b9fbb8f297deb8f05bb695b19a\n"
)

QR_SVG = (
    "<?xml version='1.0' encoding='UTF-8'?>\n"
    '<svg xmlns:svg="http://www.w3.org/2000/svg" width="36mm" height="36mm" version="1.1" '
    'xmlns="http://www.w3.org/2000/svg"><rect fill="white" x="0" y="0" width="100%" height="100%" />'
    '<svg:rect x="3.2mm" y="3.2mm" width="0.8mm" height="0.8mm" /></svg>\n'
)

RIGHTS_REQUEST = {
    "id": "5b0e8f8e-2f3c-4d1a-9a57-3f7c2f1e9d40",
    "subject_id": "8026e1cf-8fa4-45c9-8da0-8b0ea906dded",
    "kind": "correction",
    "details": "我的出生日期登记错了，应为1988年3月14日。",
    "status": "open",
    "due_at": "2026-12-18T16:00:00+00:00",
    "outcome": None,
    "created_at": "2026-11-27T16:40:12+00:00",
    "closed_at": None,
}


OPERATIONS: dict[str, Operation] = {
    "GET /v1/organization": Operation(
        response={
            "id": "9563457c-e962-4780-a63c-64f875e14b26",
            "name": "阳光小学 Sunrise Primary School",
            "contact": "privacy@sunrise.example",
            "pipo": None,
            "complaint_channel": None,
            "created_at": "2026-11-27T16:30:54+00:00",
        },
    ),
    "PATCH /v1/organization": Operation(
        request={
            "pipo": {"name": "王芳", "contact": "pipo@sunrise.example.cn"},
            "complaint_channel": "电话 021-5555-0100",
        },
        response={
            "id": "9563457c-e962-4780-a63c-64f875e14b26",
            "name": "阳光小学 Sunrise Primary School",
            "contact": "privacy@sunrise.example",
            "pipo": {"name": "王芳", "contact": "pipo@sunrise.example.cn"},
            "complaint_channel": "电话 021-5555-0100",
            "created_at": "2026-11-27T16:30:54+00:00",
        },
        errors=("contact_required",),
    ),
    "POST /v1/purposes": Operation(
        request={
            "code": "door_access",
            "name": {"zh-CN": "校门通行", "en": "Door access"},
            "description": {"zh-CN": "刷脸打开校门", "en": "Opening the school gate by face"},
            "category": "access_control",
            "necessity": {
                "zh-CN": "高峰时段教职工无法逐一核对每位学生",
                "en": "Staff cannot check every student by sight at peak hours",
            },
            "alternative": {"zh-CN": "刷学生卡同样可以开启校门", "en": "A student card opens the same gate"},
            "processing_method": {
                "zh-CN": "闸机摄像头拍摄人脸，与登记照片比对后立即删除抓拍图像；特征值加密保存在学校服务器。",
                "en": "The gate camera takes a picture, compares it with the enrolled photo "
                "and deletes it at once; the template is stored encrypted on the "
                "school's server.",
            },
            "rights_impact": {
                "zh-CN": "人脸信息属于敏感个人信息，一旦泄露难以更改。您可随时查阅、更正、删除或撤回同意。",
                "en": "Face data is sensitive and cannot be changed if leaked. You may access, "
                "correct or delete it, or withdraw consent, at any time.",
            },
            "capture": "personal_device",
            "retention_days": 90,
            "analyses": ["liveness"],
            "notice": {"zh-CN": "我们使用人脸识别开门。", "en": "We open the gate by face."},
        },
        response={
            "code": "door_access",
            "name": {"zh-CN": "校门通行", "en": "Door access"},
            "description": {"zh-CN": "刷脸打开校门", "en": "Opening the school gate by face"},
            "category": "access_control",
            "necessity": {
                "zh-CN": "高峰时段教职工无法逐一核对每位学生",
                "en": "Staff cannot check every student by sight at peak hours",
            },
            "alternative": {"zh-CN": "刷学生卡同样可以开启校门", "en": "A student card opens the same gate"},
            "processing_method": {
                "zh-CN": "闸机摄像头拍摄人脸，与登记照片比对后立即删除抓拍图像；特征值加密保存在学校服务器。",
                "en": "The gate camera takes a picture, compares it with the enrolled photo "
                "and deletes it at once; the template is stored encrypted on the "
                "school's server.",
            },
            "rights_impact": {
                "zh-CN": "人脸信息属于敏感个人信息，一旦泄露难以更改。您可随时查阅、更正、删除或撤回同意。",
                "en": "Face data is sensitive and cannot be changed if leaked. You may access, "
                "correct or delete it, or withdraw consent, at any time.",
            },
            "capture": "personal_device",
            "retention_days": 90,
            "analyses": ["liveness"],
            "transmits_face_data": False,
            "assessed_until": None,
            "reassess_by": None,
            "notice": {
                "version": 1,
                "digest": "127628598917213d2379796ee0a3bba673f3c3db5a199bcea481ee1b12bfc38b",
                "texts": {"zh-CN": "我们使用人脸识别开门。", "en": "We open the gate by face."},
                "material": True,
                "created_at": "2026-11-27T16:30:54+00:00",
            },
            "created_at": "2026-11-27T16:30:54+00:00",
        },
        errors=(
            "prohibited_analysis",
            "unknown_analysis",
            "alternative_required",
            "missing_locale",
            "purpose_exists",
        ),
    ),
    "GET /v1/purposes": Operation(
        response=[
            {
                "code": "door_access",
                "name": {"zh-CN": "校门通行", "en": "Door access"},
                "description": {"zh-CN": "刷脸打开校门", "en": "Opening the school gate by face"},
                "category": "access_control",
                "necessity": {
                    "zh-CN": "高峰时段教职工无法逐一核对每位学生",
                    "en": "Staff cannot check every student by sight at peak hours",
                },
                "alternative": {"zh-CN": "刷学生卡同样可以开启校门", "en": "A student card opens the same gate"},
                "processing_method": {
                    "zh-CN": "闸机摄像头拍摄人脸，与登记照片比对后立即删除抓拍图像；特征值加密保存在学校服务器。",
                    "en": "The gate camera takes a picture, compares it with the enrolled "
                    "photo and deletes it at once; the template is stored encrypted on "
                    "the school's server.",
                },
                "rights_impact": {
                    "zh-CN": "人脸信息属于敏感个人信息，一旦泄露难以更改。您可随时查阅、更正、删除或撤回同意。",
                    "en": "Face data is sensitive and cannot be changed if leaked. You may access, "
                    "correct or delete it, or withdraw consent, at any time.",
                },
                "capture": "personal_device",
                "retention_days": 90,
                "analyses": ["liveness"],
                "transmits_face_data": False,
                "assessed_until": None,
                "reassess_by": None,
                "notice": {
                    "version": 1,
                    "digest": "127628598917213d2379796ee0a3bba673f3c3db5a199bcea481ee1b12bfc38b",
                    "texts": {"zh-CN": "我们使用人脸识别开门。", "en": "We open the gate by face."},
                    "material": True,
                    "created_at": "2026-11-27T16:30:54+00:00",
                },
                "created_at": "2026-11-27T16:30:54+00:00",
            }
        ],
    ),
    "GET /v1/purposes/{code}": Operation(
        response={
            "code": "door_access",
            "name": {"zh-CN": "校门通行", "en": "Door access"},
            "description": {"zh-CN": "刷脸打开校门", "en": "Opening the school gate by face"},
            "category": "access_control",
            "necessity": {
                "zh-CN": "高峰时段教职工无法逐一核对每位学生",
                "en": "Staff cannot check every student by sight at peak hours",
            },
            "alternative": {"zh-CN": "刷学生卡同样可以开启校门", "en": "A student card opens the same gate"},
            "processing_method": {
                "zh-CN": "闸机摄像头拍摄人脸，与登记照片比对后立即删除抓拍图像；特征值加密保存在学校服务器。",
                "en": "The gate camera takes a picture, compares it with the enrolled photo "
                "and deletes it at once; the template is stored encrypted on the "
                "school's server.",
            },
            "rights_impact": {
                "zh-CN": "人脸信息属于敏感个人信息，一旦泄露难以更改。您可随时查阅、更正、删除或撤回同意。",
                "en": "Face data is sensitive and cannot be changed if leaked. You may access, "
                "correct or delete it, or withdraw consent, at any time.",
            },
            "capture": "personal_device",
            "retention_days": 90,
            "analyses": ["liveness"],
            "transmits_face_data": False,
            "assessed_until": None,
            "reassess_by": None,
            "notice": {
                "version": 1,
                "digest": "127628598917213d2379796ee0a3bba673f3c3db5a199bcea481ee1b12bfc38b",
                "texts": {"zh-CN": "我们使用人脸识别开门。", "en": "We open the gate by face."},
                "material": True,
                "created_at": "2026-11-27T16:30:54+00:00",
            },
            "created_at": "2026-11-27T16:30:54+00:00",
        },
    ),
    "POST /v1/purposes/{code}/notices": Operation(
        request={
            "texts": {
                "zh-CN": "我们使用人脸识别开启校门，抓拍图像比对后立即删除。",
                "en": "We open the school gate by face; the picture is deleted right after the comparison.",
            },
            "material": False,
        },
        response={
            "version": 2,
            "digest": "c800e0abcc14a35a38508e5f5cb708cf58a8c6ec666ddfdc147ffbb955f584ac",
            "texts": {
                "zh-CN": "我们使用人脸识别开启校门，抓拍图像比对后立即删除。",
                "en": "We open the school gate by face; the picture is deleted right after the comparison.",
            },
            "material": False,
            "created_at": "2026-11-27T16:30:54+00:00",
        },
        errors=("missing_locale",),
    ),
    "POST /v1/assessments": Operation(
        request={
            "purposes": ["door_access"],
            "conducted_at": "2026-11-27",
            "lawfulness_necessity": "Door access by face is lawful with separate consent; a card is offered instead.",
            "rights_impact": "A person's face template is processed; anyone may refuse and use the card.",
            "security_risks": "Templates could leak from terminals or be matched against other databases.",
            "safeguards": "On-device templates, encrypted transport, 90-day retention, no transmission.",
            "conclusion": "Proceed: the risks are low and the safeguards fit them.",
        },
        response={
            "id": "a9ca8725-1dac-43f6-839d-7e1087d5e75b",
            "purposes": ["door_access"],
            "conducted_at": "2026-11-27",
            "valid_until": "2027-11-27",
            "lawfulness_necessity": "Door access by face is lawful with separate consent; a card is offered instead.",
            "rights_impact": "A person's face template is processed; anyone may refuse and use the card.",
            "security_risks": "Templates could leak from terminals or be matched against other databases.",
            "safeguards": "On-device templates, encrypted transport, 90-day retention, no transmission.",
            "conclusion": "Proceed: the risks are low and the safeguards fit them.",
            "outdated_at": None,
            "outdated_reason": None,
            "created_at": "2026-11-27T16:30:54+00:00",
        },
        errors=(
            "assessment_incomplete",
            "unknown_purpose",
        ),
    ),
    "GET /v1/assessments": Operation(
        response={
            "items": [
                {
                    "id": "a9ca8725-1dac-43f6-839d-7e1087d5e75b",
                    "purposes": ["door_access"],
                    "conducted_at": "2026-11-27",
                    "valid_until": "2027-11-27",
                    "lawfulness_necessity": "Door access by face is lawful with separate consent; a card "
                    "is offered instead.",
                    "rights_impact": "A person's face template is processed; anyone may refuse and use the card.",
                    "security_risks": "Templates could leak from terminals or be matched against other databases.",
                    "safeguards": "On-device templates, encrypted transport, 90-day retention, no transmission.",
                    "conclusion": "Proceed: the risks are low and the safeguards fit them.",
                    "outdated_at": None,
                    "outdated_reason": None,
                    "created_at": "2026-11-27T16:30:54+00:00",
                }
            ],
            "next_cursor": None,
        },
    ),
    "GET /v1/assessments/{assessment_id}": Operation(
        response={
            "id": "a9ca8725-1dac-43f6-839d-7e1087d5e75b",
            "purposes": ["door_access"],
            "conducted_at": "2026-11-27",
            "valid_until": "2027-11-27",
            "lawfulness_necessity": "Door access by face is lawful with separate consent; a card is offered instead.",
            "rights_impact": "A person's face template is processed; anyone may refuse and use the card.",
            "security_risks": "Templates could leak from terminals or be matched against other databases.",
            "safeguards": "On-device templates, encrypted transport, 90-day retention, no transmission.",
            "conclusion": "Proceed: the risks are low and the safeguards fit them.",
            "outdated_at": None,
            "outdated_reason": None,
            "created_at": "2026-11-27T16:30:54+00:00",
        },
    ),
    "POST /v1/incidents": Operation(
        request={
            "occurred_at": "2026-11-25T16:30:54+00:00",
            "description": "A gate terminal was found with its service port open; no template was read.",
            "purposes": ["door_access"],
            "severity": "minor",
        },
        response={
            "id": "b6b3dc1c-2116-451e-998d-d1b5e9698782",
            "occurred_at": "2026-11-25T16:30:54+00:00",
            "description": "A gate terminal was found with its service port open; no template was read.",
            "purposes": ["door_access"],
            "severity": "minor",
            "created_at": "2026-11-27T16:30:54+00:00",
        },
        errors=("unknown_purpose",),
    ),
    "GET /v1/incidents": Operation(
        response={
            "items": [
                {
                    "id": "b6b3dc1c-2116-451e-998d-d1b5e9698782",
                    "occurred_at": "2026-11-25T16:30:54+00:00",
                    "description": "A gate terminal was found with its service port open; no template was read.",
                    "purposes": ["door_access"],
                    "severity": "minor",
                    "created_at": "2026-11-27T16:30:54+00:00",
                }
            ],
            "next_cursor": None,
        },
    ),
    "GET /v1/incidents/{incident_id}": Operation(
        response={
            "id": "b6b3dc1c-2116-451e-998d-d1b5e9698782",
            "occurred_at": "2026-11-25T16:30:54+00:00",
            "description": "A gate terminal was found with its service port open; no template was read.",
            "purposes": ["door_access"],
            "severity": "minor",
            "created_at": "2026-11-27T16:30:54+00:00",
        },
    ),
    "POST /v1/subjects": Operation(
        request={"external_ref": "staff-0042", "birth_date": "1988-03-14"},
        response={
            "id": "8026e1cf-8fa4-45c9-8da0-8b0ea906dded",
            "external_ref": "staff-0042",
            "birth_date": "1988-03-14",
            "is_minor": False,
            "guardian_required_until": "2002-03-14",
            "created_at": "2026-11-27T16:30:54+00:00",
            "erased_at": None,
        },
        errors=("subject_exists",),
    ),
    "GET /v1/subjects": Operation(
        response={
            "items": [
                {
                    "id": "8026e1cf-8fa4-45c9-8da0-8b0ea906dded",
                    "external_ref": "staff-0042",
                    "birth_date": "1988-03-14",
                    "is_minor": False,
                    "guardian_required_until": "2002-03-14",
                    "created_at": "2026-11-27T16:30:54+00:00",
                    "erased_at": None,
                }
            ],
            "next_cursor": None,
        },
    ),
    "GET /v1/subjects/{subject_id}": Operation(
        response={
            "id": "8026e1cf-8fa4-45c9-8da0-8b0ea906dded",
            "external_ref": "staff-0042",
            "birth_date": "1988-03-14",
            "is_minor": False,
            "guardian_required_until": "2002-03-14",
            "created_at": "2026-11-27T16:30:54+00:00",
            "erased_at": None,
        },
    ),
    "POST /v1/consents": Operation(
        request={
            "subject_id": "8026e1cf-8fa4-45c9-8da0-8b0ea906dded",
            "purpose": "door_access",
            "notice_version": 2,
            "evidence": {"method": "checkbox", "channel": "mobile_app", "locale": "zh-CN"},
        },
        response={
            "id": "ca0bad07-7dd3-47b9-83a1-980e268d1f15",
            "subject_id": "8026e1cf-8fa4-45c9-8da0-8b0ea906dded",
            "purpose": "door_access",
            "status": "active",
            "notice_version": 2,
            "notice_digest": "c800e0abcc14a35a38508e5f5cb708cf58a8c6ec666ddfdc147ffbb955f584ac",
            "guardian_authorized": False,
            "evidence": {
                "method": "checkbox",
                "channel": "mobile_app",
                "locale": "zh-CN",
                "recorded_at": "2026-11-27T16:30:54+00:00",
                "notice_digest": "c800e0abcc14a35a38508e5f5cb708cf58a8c6ec666ddfdc147ffbb955f584ac",
                "transmits_face_data": False,
            },
            "granted_at": "2026-11-27T16:30:54+00:00",
            "expires_at": "2027-02-25T16:30:54+00:00",
            "ended_at": None,
            "end_reason": None,
            "end_note": None,
            "token": CONSENT_JWT,
            "created_at": "2026-11-27T16:30:54+00:00",
        },
        errors=(
            "not_found",
            "subject_erased",
            "guardian_required",
            "assessment_required",
            "stale_notice",
            "consent_exists",
            "transmission_consent_required",
            "idempotency_key_reused",
            "invalid_idempotency_key",
        ),
    ),
    "GET /v1/consents/{consent_id}": Operation(
        response={
            "id": "ca0bad07-7dd3-47b9-83a1-980e268d1f15",
            "subject_id": "8026e1cf-8fa4-45c9-8da0-8b0ea906dded",
            "purpose": "door_access",
            "status": "active",
            "notice_version": 2,
            "notice_digest": "c800e0abcc14a35a38508e5f5cb708cf58a8c6ec666ddfdc147ffbb955f584ac",
            "guardian_authorized": False,
            "evidence": {
                "method": "checkbox",
                "channel": "mobile_app",
                "locale": "zh-CN",
                "recorded_at": "2026-11-27T16:30:54+00:00",
                "notice_digest": "c800e0abcc14a35a38508e5f5cb708cf58a8c6ec666ddfdc147ffbb955f584ac",
                "transmits_face_data": False,
            },
            "granted_at": "2026-11-27T16:30:54+00:00",
            "expires_at": "2027-02-25T16:30:54+00:00",
            "ended_at": None,
            "end_reason": None,
            "end_note": None,
            "token": CONSENT_JWT,
            "created_at": "2026-11-27T16:30:54+00:00",
        },
    ),
    "GET /v1/consents/{consent_id}/receipt": Operation(
        response={
            "receipt": {
                "schema": "ISO/IEC TS 27560:2023 consent record",
                "receipt_id": "14a8fdcc-c79d-5dc5-8cf2-6ab5b34f450d",
                "record_id": "ca0bad07-7dd3-47b9-83a1-980e268d1f15",
                "issued_at": "2026-11-27T16:30:54+00:00",
                "jurisdiction": "CN",
                "legal_basis": "separate consent (PIPL Art. 14, 29)",
                "subject": {"id": "8026e1cf-8fa4-45c9-8da0-8b0ea906dded", "guardian": None},
                "controller": {
                    "id": "9563457c-e962-4780-a63c-64f875e14b26",
                    "name": "阳光小学 Sunrise Primary School",
                    "contact": "privacy@sunrise.example",
                },
                "purpose": {
                    "code": "door_access",
                    "name": {"zh-CN": "校门通行", "en": "Door access"},
                    "description": {"zh-CN": "刷脸打开校门", "en": "Opening the school gate by face"},
                    "category": "access_control",
                    "necessity": {
                        "zh-CN": "高峰时段教职工无法逐一核对每位学生",
                        "en": "Staff cannot check every student by sight at peak hours",
                    },
                    "alternative": {"zh-CN": "刷学生卡同样可以开启校门", "en": "A student card opens the same gate"},
                    "processing_method": {
                        "zh-CN": "闸机摄像头拍摄人脸，与登记照片比对后立即删除抓拍图像；特征值加密保存在学校服务器。",
                        "en": "The gate camera takes a picture, compares it "
                        "with the enrolled photo and deletes it at "
                        "once; the template is stored encrypted on "
                        "the school's server.",
                    },
                    "rights_impact": {
                        "zh-CN": "人脸信息属于敏感个人信息，一旦泄露难以更改。您可随时查阅、更正、删除或撤回同意。",
                        "en": "Face data is sensitive and cannot be changed if "
                        "leaked. You may access, correct or delete it, or "
                        "withdraw consent, at any time.",
                    },
                    "capture": "personal_device",
                    "retention_days": 90,
                    "analyses": ["liveness"],
                    "transmits_face_data": False,
                },
                "personal_data": {"categories": ["facial_recognition_data"], "sensitive": True},
                "notice": {
                    "version": 2,
                    "digest": "c800e0abcc14a35a38508e5f5cb708cf58a8c6ec666ddfdc147ffbb955f584ac",
                    "language": "zh-CN",
                },
                "retention": {"days": 90, "ends_at": "2027-02-25T16:30:54+00:00"},
                "collection": {
                    "method": "checkbox",
                    "channel": "mobile_app",
                    "recorded_at": "2026-11-27T16:30:54+00:00",
                },
                "consent": {
                    "type": "explicit, separate",
                    "status": "active",
                    "granted_at": "2026-11-27T16:30:54+00:00",
                    "guardian_authorized": False,
                },
                "withdrawal": {
                    "method": "at any time: POST /v1/consents/{id}/revoke through the "
                    "organization, the guardian's withdrawal link, or the "
                    "organization's contact",
                    "contact": "privacy@sunrise.example",
                    "effective": "immediately",
                },
                "events": [
                    {
                        "type": "consent.granted",
                        "at": "2026-11-27T16:30:54+00:00",
                        "audit_seq": 11,
                        "audit_hash": "36649d7682f1de6446d42d603fa8d15b6311365a0b6be512ddb966f4f0395249",
                    }
                ],
            },
            "jws": RECEIPT_JWS,
        },
    ),
    "POST /v1/devices": Operation(
        request={"name": "东门闸机 1", "location_type": "school", "location": "东门"},
        response={
            "id": "5c3cd30a-4248-4f8c-81b0-8cf9b1211535",
            "name": "东门闸机 1",
            "location_type": "school",
            "location": "东门",
            "location_description": None,
            "public_place": False,
            "signage": None,
            "collection_area": None,
            "active": True,
            "created_at": "2026-11-27T16:30:54+00:00",
            "deactivated_at": None,
        },
        errors=(
            "prohibited_location",
            "signage_required",
        ),
    ),
    "GET /v1/devices": Operation(
        response=[
            {
                "id": "5c3cd30a-4248-4f8c-81b0-8cf9b1211535",
                "name": "东门闸机 1",
                "location_type": "school",
                "location": "东门",
                "location_description": None,
                "public_place": False,
                "signage": None,
                "collection_area": None,
                "active": True,
                "created_at": "2026-11-27T16:30:54+00:00",
                "deactivated_at": None,
            }
        ],
    ),
    "GET /v1/devices/{device_id}": Operation(
        response={
            "id": "5c3cd30a-4248-4f8c-81b0-8cf9b1211535",
            "name": "东门闸机 1",
            "location_type": "school",
            "location": "东门",
            "location_description": None,
            "public_place": False,
            "signage": None,
            "collection_area": None,
            "active": True,
            "created_at": "2026-11-27T16:30:54+00:00",
            "deactivated_at": None,
        },
    ),
    "POST /v1/verifications": Operation(
        request={
            "purpose": "door_access",
            "token": CONSENT_JWT,
        },
        response={
            "decision": "allow",
            "reason": "consent_active",
            "consent_id": "ca0bad07-7dd3-47b9-83a1-980e268d1f15",
            "verification_id": "01a21dd8-758a-7214-afca-e86304b73d88",
        },
    ),
    "POST /v1/verifications/batch": Operation(
        request={"items": [{"purpose": "door_access", "subject_id": "8026e1cf-8fa4-45c9-8da0-8b0ea906dded"}]},
        response={
            "results": [
                {
                    "decision": "allow",
                    "reason": "consent_active",
                    "consent_id": "ca0bad07-7dd3-47b9-83a1-980e268d1f15",
                    "verification_id": "01a21dd8-758f-7918-a977-46d32a306b41",
                }
            ]
        },
    ),
    "POST /v1/consents/{consent_id}/revoke": Operation(
        request={"reason": "本人在前台书面撤回"},
        response={
            "id": "ca0bad07-7dd3-47b9-83a1-980e268d1f15",
            "subject_id": "8026e1cf-8fa4-45c9-8da0-8b0ea906dded",
            "purpose": "door_access",
            "status": "revoked",
            "notice_version": 2,
            "notice_digest": "c800e0abcc14a35a38508e5f5cb708cf58a8c6ec666ddfdc147ffbb955f584ac",
            "guardian_authorized": False,
            "evidence": {
                "method": "checkbox",
                "channel": "mobile_app",
                "locale": "zh-CN",
                "recorded_at": "2026-11-27T16:30:54+00:00",
                "notice_digest": "c800e0abcc14a35a38508e5f5cb708cf58a8c6ec666ddfdc147ffbb955f584ac",
                "transmits_face_data": False,
            },
            "granted_at": "2026-11-27T16:30:54+00:00",
            "expires_at": "2027-02-25T16:30:54+00:00",
            "ended_at": "2026-11-27T16:30:54+00:00",
            "end_reason": "withdrawn",
            "end_note": "本人在前台书面撤回",
            "token": None,
            "created_at": "2026-11-27T16:30:54+00:00",
        },
        errors=("consent_ended",),
    ),
    "POST /v1/subjects/{subject_id}/access-link": Operation(
        response={
            "url": "https://consent.example.cn/p/n1dKs43wiWzwGPq4sqg3U-1DNLx8RMtvg-chW57mnbY",
            "expires_at": "2026-11-30T16:30:54+00:00",
            "holder": "person",
            "delivery_status": "not_required",
        },
        errors=(
            "subject_erased",
            "no_guardian_phone",
            "sms_budget_exhausted",
        ),
    ),
    "GET /v1/deletions": Operation(
        response={
            "items": [
                {
                    "id": "01a21dd8-75a1-7774-9911-cee5f2caa8fd",
                    "consent_id": "ca0bad07-7dd3-47b9-83a1-980e268d1f15",
                    "subject_id": "8026e1cf-8fa4-45c9-8da0-8b0ea906dded",
                    "purpose": "door_access",
                    "api_key_id": "924e3f3c-f521-419b-988d-8eb247dba268",
                    "status": "pending",
                    "ended_at": "2026-11-27T16:30:54+00:00",
                    "due_at": "2026-11-30T16:30:54+00:00",
                    "confirmed_at": None,
                    "confirmed_by": None,
                }
            ],
            "next_cursor": None,
        },
    ),
    "POST /v1/deletions/{deletion_id}/confirm": Operation(
        response={
            "id": "01a21dd8-75a1-7774-9911-cee5f2caa8fd",
            "consent_id": "ca0bad07-7dd3-47b9-83a1-980e268d1f15",
            "subject_id": "8026e1cf-8fa4-45c9-8da0-8b0ea906dded",
            "purpose": "door_access",
            "api_key_id": "924e3f3c-f521-419b-988d-8eb247dba268",
            "status": "confirmed",
            "ended_at": "2026-11-27T16:30:54+00:00",
            "due_at": "2026-11-30T16:30:54+00:00",
            "confirmed_at": "2026-11-27T16:30:54+00:00",
            "confirmed_by": "api_key:924e3f3c-f521-419b-988d-8eb247dba268",
        },
    ),
    "POST /v1/devices/{device_id}/deactivate": Operation(
        response={
            "id": "5c3cd30a-4248-4f8c-81b0-8cf9b1211535",
            "name": "东门闸机 1",
            "location_type": "school",
            "location": "东门",
            "location_description": None,
            "public_place": False,
            "signage": None,
            "collection_area": None,
            "active": False,
            "created_at": "2026-11-27T16:30:54+00:00",
            "deactivated_at": "2026-11-27T16:30:54+00:00",
        },
    ),
    "POST /v1/guardian-requests": Operation(
        request={
            "subject_id": "bed5130b-4d34-4df3-aef7-1c7bab600cb4",
            "purposes": ["door_access"],
            "guardian": {"phone": "+8613812345678", "relationship": "parent"},
            "delivery": "qr",
            "locale": "zh-CN",
            "child_display_name": "小明",
        },
        response={
            "id": "c10e1546-c41d-4e97-ac08-6d114c3f009e",
            "subject_id": "bed5130b-4d34-4df3-aef7-1c7bab600cb4",
            "status": "pending",
            "delivery": "qr",
            "delivery_status": "not_required",
            "delivery_error": None,
            "locale": "zh-CN",
            "guardian": {"phone_masked": "+86 138****5678", "relationship": "parent"},
            "consents": [
                {"id": "f110e8ee-0cca-4c90-9016-b438eb218a57", "purpose": "door_access", "status": "pending_guardian"}
            ],
            "approve_url": "https://consent.example.cn/g/ixzO2DzE4J9WBs5DQZ4iEwO-hAQGxpscM0X2lC4P6Og",
            "qr_png_url": "https://consent.example.cn/v1/guardian-requests/c10e1546-c41d-4e97-ac08-6d114c3f009e/qr.png",
            "qr_svg_url": "https://consent.example.cn/v1/guardian-requests/c10e1546-c41d-4e97-ac08-6d114c3f009e/qr.svg",
            "expires_at": "2026-11-30T16:30:54+00:00",
            "decided_at": None,
            "poll_interval": 5,
            "created_at": "2026-11-27T16:30:54+00:00",
        },
        errors=(
            "not_found",
            "subject_erased",
            "not_a_minor",
            "assessment_required",
            "consent_exists",
            "recently_declined",
            "unknown_purpose",
            "invalid_phone",
            "sms_budget_exhausted",
        ),
    ),
    "GET /v1/guardian-requests/{request_id}": Operation(
        response={
            "id": "c10e1546-c41d-4e97-ac08-6d114c3f009e",
            "subject_id": "bed5130b-4d34-4df3-aef7-1c7bab600cb4",
            "status": "pending",
            "delivery": "qr",
            "delivery_status": "not_required",
            "delivery_error": None,
            "locale": "zh-CN",
            "guardian": {"phone_masked": "+86 138****5678", "relationship": "parent"},
            "consents": [
                {"id": "f110e8ee-0cca-4c90-9016-b438eb218a57", "purpose": "door_access", "status": "pending_guardian"}
            ],
            "approve_url": "https://consent.example.cn/g/ixzO2DzE4J9WBs5DQZ4iEwO-hAQGxpscM0X2lC4P6Og",
            "qr_png_url": "https://consent.example.cn/v1/guardian-requests/c10e1546-c41d-4e97-ac08-6d114c3f009e/qr.png",
            "qr_svg_url": "https://consent.example.cn/v1/guardian-requests/c10e1546-c41d-4e97-ac08-6d114c3f009e/qr.svg",
            "expires_at": "2026-11-30T16:30:54+00:00",
            "decided_at": None,
            "poll_interval": 5,
            "created_at": "2026-11-27T16:30:54+00:00",
        },
    ),
    "POST /v1/guardian-requests/{request_id}/paper-decision": Operation(
        request={
            "decisions": {"door_access": "approve"},
            "form_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "signed_on": "2026-11-28",
        },
        response={
            "id": "858987d2-9e50-4e49-b916-303b29d1c699",
            "subject_id": "03be30d7-a5e6-4bf4-9c2b-d8b3a1cf1adb",
            "status": "approved",
            "delivery": "paper",
            "delivery_status": "not_required",
            "delivery_error": None,
            "locale": "zh-CN",
            "guardian": {"phone_masked": "+86 137****5678", "relationship": "parent"},
            "consents": [{"id": "a4f8ce2f-e72c-4aac-8305-4fbb1d4a8af4", "purpose": "door_access", "status": "active"}],
            "expires_at": "2026-11-30T16:30:54+00:00",
            "decided_at": "2026-11-27T16:30:55+00:00",
            "poll_interval": 5,
            "created_at": "2026-11-27T16:30:54+00:00",
            "withdrawal_sms": "queued",
        },
        errors=(
            "not_paper_request",
            "request_not_pending",
            "subject_erased",
            "not_a_minor",
            "state_changed",
            "stale_notice",
        ),
    ),
    "GET /v1/rights-requests": Operation(response={"items": [RIGHTS_REQUEST], "next_cursor": None}),
    "POST /v1/rights-requests/{rights_request_id}/close": Operation(
        request={"outcome": "已更正出生日期为1988-03-14，并通知了本人。"},
        response={
            **RIGHTS_REQUEST,
            "status": "closed",
            "outcome": "已更正出生日期为1988-03-14，并通知了本人。",
            "closed_at": "2026-11-30T02:15:00+00:00",
        },
    ),
    "POST /v1/guardian-requests/{request_id}/resend": Operation(
        response={
            "id": "93c38d1d-3697-42f7-9cb4-437e113b2ffd",
            "subject_id": "9d959571-fc6f-4cc5-8f7c-5e594a6847bc",
            "status": "pending",
            "delivery": "sms",
            "delivery_status": "queued",
            "delivery_error": None,
            "locale": "zh-CN",
            "guardian": {"phone_masked": "+86 139****5678", "relationship": "legal_guardian"},
            "consents": [
                {"id": "a906dce9-45af-4474-9432-1385dd6423b9", "purpose": "door_access", "status": "pending_guardian"}
            ],
            "expires_at": "2026-11-30T16:33:38+00:00",
            "decided_at": None,
            "poll_interval": 5,
            "created_at": "2026-11-27T16:33:38+00:00",
        },
        errors=("request_not_pending", "sms_budget_exhausted", "phone_erased"),
    ),
    "GET /v1/assessments/export": Operation(response=ASSESSMENT_LINE, media="application/x-ndjson"),
    "GET /v1/audit/export": Operation(
        response=AUDIT_LINE, media="application/x-ndjson", other_media=(("text/csv", AUDIT_CSV),)
    ),
    "GET /v1/status-lists/{list_id}": Operation(response=STATUS_LIST_JWT, media="application/statuslist+jwt"),
    "GET /v1/guardian-requests/{request_id}/qr.svg": Operation(
        response=QR_SVG, media="image/svg+xml", errors=("request_not_pending",)
    ),
    # A PNG and an HTML page: no example in the spec.
    "GET /v1/guardian-requests/{request_id}/qr.png": Operation(media="image/png", errors=("request_not_pending",)),
    "GET /v1/reports/compliance.html": Operation(media="text/html"),
    # The answer's example is on the view (REPORT_LINK_EXAMPLE), which the plugin keeps.
    "POST /v1/reports/compliance/links": Operation(request={"hours": 72, "lang": "zh-CN"}, errors=("conflict",)),
    "DELETE /v1/reports/compliance/links": Operation(),
    "GET /v1/consent-events": Operation(
        response={
            "events": [
                {
                    "cursor": 11,
                    "type": "granted",
                    "consent_id": "ca0bad07-7dd3-47b9-83a1-980e268d1f15",
                    "subject_id": "8026e1cf-8fa4-45c9-8da0-8b0ea906dded",
                    "purpose": "door_access",
                    "occurred_at": "2026-11-27T16:30:54+00:00",
                }
            ],
            "next_after": 13,
        },
    ),
    "GET /v1/audit/events": Operation(
        response={
            "events": [
                {
                    "seq": 1,
                    "occurred_at": "2026-11-27T16:30:54+00:00",
                    "actor": "cli",
                    "action": "organization.created",
                    "object_type": "organization",
                    "object_id": "9563457c-e962-4780-a63c-64f875e14b26",
                    "data": {"name": "阳光小学 Sunrise Primary School"},
                    "prev_hash": "0000000000000000000000000000000000000000000000000000000000000000",
                    "hash": "59a898f7753803312e55a108df19673877048d305221a410dc2f539fbd0d0087",
                }
            ],
            "next_after": 2,
        },
    ),
    "GET /v1/reports/compliance": Operation(
        response={
            "organization": {
                "id": "9563457c-e962-4780-a63c-64f875e14b26",
                "name": "阳光小学 Sunrise Primary School",
                "contact": "privacy@sunrise.example",
                "pipo": {"name": "王芳", "contact": "pipo@sunrise.example.cn"},
                "complaint_channel": "电话 021-5555-0100",
            },
            "generated_at": "2026-11-27T16:30:55+00:00",
            "filing": {
                "status": "not_required",
                "count": 1,
                "threshold": 100000,
                "crossed_on": None,
                "deadline": None,
                "due_filing": None,
                "changed_on": None,
                "changed_purposes": [],
                "last_filing": None,
            },
            "consents_by_status": {"active": 1, "pending_guardian": 2, "revoked": 1},
            "consents_by_form": {"written": {"active": 1}, "online": {"pending_guardian": 2, "revoked": 1}},
            "minors_with_guardian_consent": 1,
            "purposes": [
                {
                    "code": "door_access",
                    "name": {"zh-CN": "校门通行", "en": "Door access"},
                    "category": "access_control",
                    "assessed_until": "2027-11-27",
                    "reassess_by": None,
                    "transmits_face_data": False,
                    "retention_days": 90,
                    "assessments": [
                        {
                            "id": "a9ca8725-1dac-43f6-839d-7e1087d5e75b",
                            "conducted_at": "2026-11-27",
                            "valid_until": "2027-11-27",
                            "outdated": False,
                        }
                    ],
                }
            ],
            "assessments_due": [],
            "reassessment_due": [],
            "incidents": [
                {
                    "id": "b6b3dc1c-2116-451e-998d-d1b5e9698782",
                    "occurred_at": "2026-11-25T16:30:54+00:00",
                    "severity": "minor",
                    "purposes": ["door_access"],
                    "description": "A gate terminal was found with its service port open; no template was read.",
                }
            ],
            "devices_by_location_type": {},
            "verifications": [{"decision": "allow", "reason": "consent_active", "count": 2}],
            "consents_over_time": [
                {"date": "2026-10-29", "granted": 0, "revoked": 0, "expired": 0, "declined": 0, "reconsent_required": 0}
            ],
            "deletions": {"pending": 0, "overdue": 0, "confirmed": 1},
        },
    ),
    "POST /v1/filings": Operation(
        request={
            "kind": "initial",
            "filed_on": "2026-11-27",
            "authority": "上海市互联网信息办公室",
            "filing_number": "沪网信备-2026-0001",
        },
        response={
            "id": "cf5aa342-c7fd-49bd-be71-ffcacaecc6d7",
            "kind": "initial",
            "filed_on": "2026-11-27",
            "authority": "上海市互联网信息办公室",
            "filing_number": "沪网信备-2026-0001",
            "purposes": ["door_access"],
            "created_at": "2026-11-27T16:30:55+00:00",
        },
        errors=(
            "already_filed",
            "not_filed",
        ),
    ),
    "GET /v1/filings/materials": Operation(
        response={
            "generated_at": "2026-11-27T16:30:55+00:00",
            "handler": {
                "name": "阳光小学 Sunrise Primary School",
                "contact": "privacy@sunrise.example",
                "pipo": {"name": "王芳", "contact": "pipo@sunrise.example.cn"},
                "complaint_channel": "电话 021-5555-0100",
            },
            "count": {"people": 1, "threshold": 100000},
            "purposes": [
                {
                    "code": "door_access",
                    "name": {"zh-CN": "校门通行", "en": "Door access"},
                    "category": "access_control",
                    "processing_method": {
                        "zh-CN": "闸机摄像头拍摄人脸，与登记照片比对后立即删除抓拍图像；特征值加密保存在学校服务器。",
                        "en": "The gate camera takes a picture, compares it with the "
                        "enrolled photo and deletes it at once; the template is "
                        "stored encrypted on the school's server.",
                    },
                    "capture": "personal_device",
                    "analyses": ["liveness"],
                    "transmits_face_data": False,
                    "retention_days": 90,
                    "notice_version": 2,
                }
            ],
            "devices": [],
            "safeguards": [
                {
                    "assessment_id": "a9ca8725-1dac-43f6-839d-7e1087d5e75b",
                    "purposes": ["door_access"],
                    "text": "On-device templates, encrypted transport, 90-day retention, no transmission.",
                }
            ],
            "assessments": [
                {
                    "id": "a9ca8725-1dac-43f6-839d-7e1087d5e75b",
                    "purposes": ["door_access"],
                    "conducted_at": "2026-11-27",
                    "valid_until": "2027-11-27",
                    "current": True,
                    "lawfulness_necessity": "Door access by face is lawful with separate consent; a "
                    "card is offered instead.",
                    "rights_impact": "A person's face template is processed; anyone may refuse and use the card.",
                    "security_risks": "Templates could leak from terminals or be matched against other databases.",
                    "safeguards": "On-device templates, encrypted transport, 90-day retention, no transmission.",
                    "conclusion": "Proceed: the risks are low and the safeguards fit them.",
                }
            ],
            "filings": [
                {
                    "id": "cf5aa342-c7fd-49bd-be71-ffcacaecc6d7",
                    "kind": "initial",
                    "filed_on": "2026-11-27",
                    "authority": "上海市互联网信息办公室",
                    "filing_number": "沪网信备-2026-0001",
                    "purposes": ["door_access"],
                    "created_at": "2026-11-27T16:30:55+00:00",
                }
            ],
        },
    ),
    "GET /.well-known/jwks.json": Operation(
        response={
            "keys": [
                {
                    "kty": "EC",
                    "crv": "P-256",
                    "x": "5sM-mzBp0iHrlq4I6ANEQ-3hNcX7weqaFres2gdA3vw",
                    "y": "Gtap6lcWdm1UbopVFUX96k22ebEc4zyrasxrtwaG--o",
                    "kid": "Q9Oyk-UqBApqm217caVmfgh2Q1rEw8Spp39aw4DF1c4",
                    "alg": "ES256",
                    "use": "sig",
                }
            ]
        },
    ),
    "GET /healthz": Operation(
        response={"status": "ok"},
    ),
    "GET /readyz": Operation(
        response={"status": "ok"},
        errors=("database_unavailable",),
    ),
    "DELETE /v1/subjects/{subject_id}": Operation(),
}

# Lists page their items alike: {"items": [...], "next_cursor": null}, with ?cursor=&limit=.
_KEY = {
    "id": "0b9e3c52-2f7a-4c1e-9a55-3f0d2c8e7b14",
    "name": "东门闸机 gate terminals",
    "prefix": "cg_Xk3q9Tz",
    "scopes": ["verify"],
    "created_at": "2026-11-27T16:30:54+00:00",
    "last_used_at": "2026-11-27T16:35:10+00:00",
    "revoked_at": None,
}
_WEBHOOK = {
    "id": "b8e3d5a1-2c4f-4e6a-8b0d-1f3e5a7c9d2b",
    "url": "https://hooks.school.example.cn/consent-gate",
    "events": ["consent.granted", "consent.revoked", "guardian_request.decided"],
    "created_at": "2026-11-27T16:36:00+00:00",
}
OPERATIONS.update(
    {
        "GET /v1/keys": Operation(response={"items": [_KEY], "next_cursor": None}),
        "POST /v1/keys": Operation(
            request={"name": "东门闸机 gate terminals", "scopes": ["verify"]},
            response={
                "id": _KEY["id"],
                "key": "cg_Xk3q9TzmS1lq0V6yQn4bJ8wR2tD5pF7hK9cE3aZ-u_W",
                "name": _KEY["name"],
                "scopes": ["verify"],
            },
            errors=("invalid_name", "too_many_keys"),
        ),
        "DELETE /v1/keys/{key_id}": Operation(),
        "GET /v1/webhooks": Operation(response={"items": [_WEBHOOK], "next_cursor": None}),
        "POST /v1/webhooks": Operation(
            request={"url": _WEBHOOK["url"], "events": _WEBHOOK["events"]},
            response={
                "id": _WEBHOOK["id"],
                "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw5m2bNdWpqXo=",
                "url": _WEBHOOK["url"],
                "events": _WEBHOOK["events"],
            },
            errors=("webhook_url_refused", "webhook_event_unknown", "too_many_webhooks"),
        ),
        "GET /v1/webhooks/{webhook_id}": Operation(response=_WEBHOOK),
        "DELETE /v1/webhooks/{webhook_id}": Operation(),
        "GET /v1/webhooks/{webhook_id}/deliveries": Operation(
            response={
                "items": [
                    {
                        "id": "3f1c2b7e-5a8d-4c1e-9b0a-7d6e5f4c3b2a",
                        "event": "consent.revoked",
                        "status": "sent",
                        "attempts": 2,
                        "last_status_code": 204,
                        "last_error": None,
                        "created_at": "2026-11-27T16:40:02+00:00",
                        "last_attempt_at": "2026-11-27T16:40:05+00:00",
                        "next_attempt_at": "2026-11-27T16:40:04+00:00",
                        "settled_at": "2026-11-27T16:40:05+00:00",
                    }
                ],
                "next_cursor": None,
            }
        ),
        "GET /v1/consents": Operation(
            response={"items": [OPERATIONS["GET /v1/consents/{consent_id}"].response], "next_cursor": None}
        ),
        "GET /v1/guardian-requests": Operation(
            response={"items": [OPERATIONS["GET /v1/guardian-requests/{request_id}"].response], "next_cursor": None}
        ),
        "GET /v1/purposes": Operation(
            response={"items": OPERATIONS["GET /v1/purposes"].response, "next_cursor": None},
            errors=OPERATIONS["GET /v1/purposes"].errors,
        ),
        "GET /v1/devices": Operation(
            response={"items": OPERATIONS["GET /v1/devices"].response, "next_cursor": None},
            errors=OPERATIONS["GET /v1/devices"].errors,
        ),
    }
)
