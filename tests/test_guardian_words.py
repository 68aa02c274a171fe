"""The guardian pages read by a parent and by a grandparent of 70: what must be in plain sight (the deadline,
each purpose's way without face recognition), a reference that can be read out on the phone, a refusal
that says what happens next, China time written the Chinese way, waits in minutes, a code said to be on
its way rather than arrived, and a form refused for its age that offers the page again."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import select

from service import db
from service.domain import guardian as flow
from service.domain.guardian.messaging import Messenger
from service.models import GuardianRequest, Purpose

if TYPE_CHECKING:
    from tests.support import GuardianKit, Tenant

DOOR_ALTERNATIVE = "刷学生卡同样可以开启校门"
CANTEEN_ALTERNATIVE = "使用食堂饭卡支付"
CHINA_TIME_ZH = re.compile(r"\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d（北京时间）")


def _open(tenant: Tenant, guardian: GuardianKit, outbox: Any, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(
        child["id"], ["door_access", "canteen_payment"], child_display_name="张*明", **kwargs
    ).json
    link = created.get("approve_url") or guardian.url_from(outbox()[-1])
    return created, guardian.browser(link)


def _outside_details(html: str) -> str:
    """The page without its closed ``<details>``: what a guardian sees without tapping anything."""
    return re.sub(r"<details\b.*?</details>", "", html, flags=re.S)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def test_the_deadline_and_each_alternative_are_in_plain_sight(
    tenant: Tenant, guardian: GuardianKit, outbox: Any
) -> None:
    _, parent = _open(tenant, guardian, outbox)
    html = parent.open().get_data(as_text=True)
    shown = _text(_outside_details(html))
    # The deadline under the child's name, in China time written the Chinese way (no English in it).
    deadline = re.search(r"请在(\S+ \S+)前作出决定", shown)
    assert deadline and CHINA_TIME_ZH.fullmatch(deadline.group(1)), shown
    assert shown.index("张*明") < shown.index("前作出决定")
    assert "China time" not in html
    # The intro says unticked is no, and where the other ways are.
    assert "Sunrise School想对孩子使用人脸识别，请您作为监护人逐项决定。" in shown
    assert "不勾选就是不同意" in shown and "孩子可以用每项下面写的其他方式" in shown
    # Each purpose's alternative, under it, not only in the closed full notice.
    assert f"不同意也可以：{DOOR_ALTERNATIVE}" in shown and f"不同意也可以：{CANTEEN_ALTERNATIVE}" in shown
    assert shown.index(DOOR_ALTERNATIVE) < shown.index(CANTEEN_ALTERNATIVE)
    # The guardian's confirmation says what to do if you are not one.
    assert "如您不是孩子的父母或法定监护人，请不要在此作决定，可联系Sunrise School。" in shown

    english = _text(_outside_details(parent.open("?lang=en").get_data(as_text=True)))
    assert re.search(r"Please decide before \d{4}-\d\d-\d\d \d\d:\d\d \(China time\)", english), english
    assert f"If you do not agree: {'A student card opens the same gate'}" in english


def test_the_transmission_box_is_where_the_notice_says(tenant: Tenant, guardian: GuardianKit, outbox: Any) -> None:
    _, parent = _open(tenant, guardian, outbox)
    html = parent.open().get_data(as_text=True)
    canteen = html[html.index('data-purpose="canteen_payment"') :]
    box = canteen.index('name="transmit"')
    notice = canteen.index("即上方的第二个勾选框")
    assert box < notice, "the box stands above the notice that points to it"
    assert "下方的第二个勾选框" not in html
    assert "我另外同意：为“食堂刷脸支付”，把孩子的人脸信息从采集设备传送出去" in _text(canteen)
    english = parent.open("?lang=en").get_data(as_text=True)
    assert "the second box above" in english and "second box below" not in english


def test_the_receipt_gives_a_reference_to_read_out_and_asks_for_a_screenshot(
    tenant: Tenant, guardian: GuardianKit, outbox: Any
) -> None:
    created, parent = _open(tenant, guardian, outbox)
    receipt = parent.submit(action="approve", attest_guardian="yes", purpose="door_access")
    html = receipt.get_data(as_text=True)
    short = re.search(r'id="short-reference">([^<]+)<', html)
    assert short is not None
    # The request id's first 8 characters, upper case, in two groups of four: what the organization looks up.
    assert short.group(1) == f"{created['id'][:4].upper()} {created['id'][4:8].upper()}"
    assert created["id"].startswith(short.group(1).replace(" ", "").lower())
    assert f'id="reference">{created["id"]}<' in html  # the full id stays, smaller, for the organization
    shown = _text(html)
    assert "参考编号：" + short.group(1) in shown and "请截屏保存本页。" in shown
    assert "收藏" not in shown
    # The purpose left unticked: declined, with the way the child can use instead.
    assert f"其他方式：{CANTEEN_ALTERNATIVE}" in shown and DOOR_ALTERNATIVE not in shown
    # Opened again, the spent link says so plainly.
    used = parent.open()
    assert used.status_code == 410
    assert "您已用这个链接作过决定，不能再改。下面是当时的决定。" in _text(used.get_data(as_text=True))


def test_a_refusal_says_what_happens_next(tenant: Tenant, guardian: GuardianKit, outbox: Any) -> None:
    _, parent = _open(tenant, guardian, outbox)
    shown = _text(parent.submit(action="decline").get_data(as_text=True))
    assert (
        "您选择了不同意，孩子的人脸信息不会用于这些用途，孩子可以继续用上面写的其他方式。"
        "如果是点错了或改变主意，请联系Sunrise School。"
    ) in shown
    assert f"其他方式：{DOOR_ALTERNATIVE}" in shown and f"其他方式：{CANTEEN_ALTERNATIVE}" in shown
    assert shown.index(DOOR_ALTERNATIVE) < shown.index("您选择了不同意")  # "上面写的": above it
    english = _text(parent.open("?lang=en").get_data(as_text=True))
    assert "You chose not to agree" in english and "Other way: A student card opens the same gate" in english


def test_a_ticked_purpose_the_organization_could_not_grant_says_why(
    tenant: Tenant, guardian: GuardianKit, outbox: Any, app: Flask
) -> None:
    _, parent = _open(tenant, guardian, outbox)
    csrf = parent.csrf()
    with app.app_context():  # the organization's impact assessment lapses while the guardian reads
        session = db.session()
        purpose = session.scalars(select(Purpose).where(Purpose.code == "door_access")).one()
        purpose.assessed_until = date.today() - timedelta(days=1)
        session.commit()
    form = {"csrf_token": csrf, "action": "approve", "attest_guardian": "yes", "purpose": "door_access"}
    html = parent.client.post(parent.path, data=form, follow_redirects=True).get_data(as_text=True)
    door = html[html.index('data-purpose="door_access"') :]
    door = door[: door.index("</li>")]
    assert 'data-decision="declined"' in html
    assert "未生效：Sunrise School手续未完成，不会使用孩子的人脸信息" in _text(door)
    # A purpose the guardian left unticked still says 未同意.
    canteen = html[html.index('data-purpose="canteen_payment"') :]
    assert "未同意" in _text(canteen[: canteen.index("</li>")])


def test_an_expired_form_offers_the_page_again(tenant: Tenant, guardian: GuardianKit, outbox: Any) -> None:
    _, parent = _open(tenant, guardian, outbox)
    parent.open()
    refused = parent.client.post(parent.path, data={"csrf_token": "0" * 64, "action": "decline"})
    assert refused.status_code == 403
    html = refused.get_data(as_text=True)
    assert "页面停留太久，您的选择没有提交。请点下面的“重新打开”，再选一次。" in _text(html)
    assert "刷新" not in html  # a reload would post the refused form again
    reopen = re.search(r'<a href="([^"]+)" id="reopen"[^>]*>重新打开</a>', html)
    assert reopen is not None and reopen.group(1) == f"{parent.path}?lang=zh-CN"
    again = parent.client.get(reopen.group(1))
    assert again.status_code == 200 and 'value="decline"' in again.get_data(as_text=True)


def test_the_persons_page_offers_itself_again_too(tenant: Tenant, guardian: GuardianKit) -> None:
    person = tenant.subject()
    url = tenant.post(f"/v1/subjects/{person['id']}/access-link", scope="consents").json["url"]
    page = guardian.browser(url)
    page.open()
    refused = page.client.post(page.path, data={"csrf_token": "0" * 64, "withdraw": "x"})
    assert refused.status_code == 403
    reopen = re.search(r'<a href="([^"]+)" id="reopen"', refused.get_data(as_text=True))
    assert reopen is not None and page.client.get(reopen.group(1)).status_code == 200


def test_the_code_is_said_to_be_on_its_way_and_waits_are_in_minutes(
    tenant: Tenant, guardian: GuardianKit, outbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, parent = _open(tenant, guardian, outbox, delivery="qr")
    sent = _text(parent.submit(action="send_code").get_data(as_text=True))
    assert "验证码正在发送，一般1分钟内收到；没收到可在1分钟后再点“发送验证码”。" in sent
    assert "验证码已发送" not in sent
    body = outbox()[-1]["body"]
    assert re.search(r"】验证码\d{6}，用于", body), body  # no stray spaces around the code
    # At once again: the minute's limit.
    again = parent.submit(action="send_code")
    assert again.status_code == 429
    assert "发送太频繁" in _text(again.get_data(as_text=True))

    def wait(seconds: int) -> Any:
        def refuse(*_: Any, **__: Any) -> None:
            raise flow.RateLimited("limit", seconds)

        monkeypatch.setattr(Messenger, "reserve", refuse)
        return _text(parent.submit(action="send_code").get_data(as_text=True))

    assert "发送太频繁，请约17分钟后再点“发送验证码”。" in wait(16 * 60 + 1)  # rounded up
    assert "发送太频繁，请约1分钟后再点“发送验证码”。" in wait(60)
    assert "发送太频繁，请40秒后再点“发送验证码”。" in wait(40)
    assert "秒后再试" not in wait(3600)


def test_withdrawing_says_the_data_will_be_deleted(tenant: Tenant, guardian: GuardianKit, outbox: Any) -> None:
    created, parent = _open(tenant, guardian, outbox)
    parent.submit(action="approve", attest_guardian="yes", purpose="door_access")
    withdrawal = guardian.browser(guardian.url_from(outbox()[-1]))
    door = next(c["id"] for c in created["consents"] if c["purpose"] == "door_access")
    confirm = _text(withdrawal.submit(withdraw=door).get_data(as_text=True))
    assert "Sunrise School会删除相关人脸信息" in confirm and "应当删除" not in confirm


def test_times_on_the_pages_are_china_time_in_chinese(
    tenant: Tenant, guardian: GuardianKit, outbox: Any, app: Flask
) -> None:
    created, parent = _open(tenant, guardian, outbox)
    with app.app_context():
        row = db.session().get(GuardianRequest, created["id"])
        assert row is not None
        expires = row.expires_at
    from service.domain.subjects import CHINA_TIME

    local = expires.astimezone(CHINA_TIME)
    expected = f"请在{local.year}年{local.month}月{local.day}日 {local:%H:%M}（北京时间）前作出决定"
    assert expected in _text(parent.open().get_data(as_text=True))
    receipt = _text(parent.submit(action="decline").get_data(as_text=True))
    assert CHINA_TIME_ZH.search(receipt.split("记录时间：", 1)[1]), receipt
