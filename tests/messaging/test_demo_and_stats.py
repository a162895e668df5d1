import io
import json

from django.core.management import call_command

from messaging.models import Contact
from messaging.selectors import contact_search


def test_the_demo_has_an_address_book_to_try(db):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", "--force", stdout=io.StringIO())  # once only
    from accounts.models import Organization

    demo = Organization.objects.get(slug="demo")
    assert Contact.objects.filter(organization=demo).count() == 8
    assert [c.display_name for c in contact_search(organization=demo, query="reemy")] == [
        "Reem Haddad"
    ]


def test_show_stats_counts_contacts_per_organization(cast):
    from messaging.services import contacts as svc

    svc.contact_create(organization=cast.org_a, data={"name": "A"})
    svc.contact_create(organization=cast.org_a, data={"name": "B", "status": "blocked"})
    out = io.StringIO()
    call_command("show_stats", "--json", stdout=out)
    section = json.loads(out.getvalue())["address_book"]
    assert {"slug": "acme", "contacts": 2, "opted_out": 0, "blocked": 1} in section["rows"]


def test_the_demo_has_conversations_on_its_phone_with_the_address_books_people(db):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", "--force", stdout=io.StringIO())  # once only
    from accounts.models import Organization
    from messaging.models import Chat, Message

    demo = Organization.objects.get(slug="demo")
    assert Contact.objects.filter(organization=demo).count() == 8  # no stranger created
    chats = Chat.objects.filter(organization=demo)
    assert sorted(c.name or c.contact.display_name for c in chats) == [
        "Reem Haddad",
        "Tea tasting",
        "陳大文",
    ]
    assert Message.objects.filter(organization=demo).count() == 6
    assert Message.objects.get(organization=demo, provider_message_id="DEMO2").status == "read"
    out = io.StringIO()
    call_command("show_stats", "--json", stdout=out)
    rows = json.loads(out.getvalue())["conversations"]["rows"]
    assert {
        "slug": "demo",
        "session": "Demo phone",
        "contacts": 2,
        "chats": 3,
        "messages": 6,
        "attachments": 0,
        "failed": 0,
    } in rows
