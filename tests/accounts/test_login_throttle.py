"""Login throttling per account and per IP, and the audit trail of sign-ins."""

from accounts.models import AuditEvent


def _login(client, email, password, ip="203.0.113.9"):
    return client.post("/login/", {"username": email, "password": password}, REMOTE_ADDR=ip)


def test_too_many_failures_from_one_ip_block_every_account_from_it(
    cast, client, password, settings
):
    settings.PARLEY_LOGIN_MAX_FAILURES_PER_IP = 3
    for n in range(3):
        _login(client, f"guess{n}@a.example", "wrong")
    blocked = _login(client, cast.agent.email, password)
    assert blocked.status_code == 200 and b"Too many failed attempts" in blocked.content
    elsewhere = _login(client, cast.agent.email, password, ip="198.51.100.7")
    assert elsewhere.status_code == 302


def test_a_successful_login_is_in_the_audit_log_of_each_of_ones_organizations(
    cast, client, password
):
    from accounts import services

    services.organization_create(name="Side Project", owner=cast.agent)
    assert _login(client, cast.agent.email, password).status_code == 302
    events = AuditEvent.objects.filter(action="login.succeeded", actor=cast.agent)
    assert sorted(e.organization.name for e in events) == ["Acme Trading", "Side Project"]
    assert events[0].ip_address == "203.0.113.9"


def test_a_failed_login_is_audited_for_the_account(cast, client):
    _login(client, cast.viewer.email, "wrong")
    assert AuditEvent.objects.filter(
        organization=cast.org_a, action="login.failed", target_label=cast.viewer.email
    ).exists()
