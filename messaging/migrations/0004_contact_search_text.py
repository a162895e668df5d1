"""Search moves into the contact row, and indexes that only slowed writes go.

- ``Contact.search_text`` replaces the ContactSearchTerm table: one column per contact instead of
  two or three rows (each with five indexes and two foreign keys to check), filled here from the
  contacts' names, email, aliases and identities; on PostgreSQL a trigram index serves it.
- Organization foreign keys of the address book lose their own index where a unique constraint or
  another index already starts with the organization, and (organization, contact) / (organization,
  tag) indexes go where the foreign key's own index on the contact or tag serves the same queries.
"""

import django.db.models.deletion
from django.db import migrations, models

TRIGRAM = (
    "CREATE INDEX IF NOT EXISTS contact_search_trgm "
    "ON messaging_contact USING gin (search_text gin_trgm_ops)"
)


def fill_search_text(apps, schema_editor):
    from messaging.text import search_text

    Contact = apps.get_model("messaging", "Contact")
    ContactAlias = apps.get_model("messaging", "ContactAlias")
    ContactIdentity = apps.get_model("messaging", "ContactIdentity")
    db = schema_editor.connection.alias
    last = 0
    while True:
        contacts = list(
            Contact.objects.using(db)
            .filter(pk__gt=last)
            .order_by("pk")
            .only("id", "name", "notify_name", "verified_name", "email")[:2000]
        )
        if not contacts:
            return
        last = contacts[-1].pk
        ids = [c.pk for c in contacts]
        terms = {
            c.pk: [
                ("name", c.name),
                ("name", c.notify_name),
                ("name", c.verified_name),
                ("email", c.email),
            ]
            for c in contacts
        }
        for contact_id, alias in (
            ContactAlias.objects.using(db)
            .filter(contact_id__in=ids)
            .values_list("contact_id", "alias")
        ):
            terms[contact_id].append(("alias", alias))
        for contact_id, kind, value in (
            ContactIdentity.objects.using(db)
            .filter(contact_id__in=ids)
            .values_list("contact_id", "kind", "value")
        ):
            terms[contact_id].append(("phone" if kind == "phone" else "identity", value))
        for contact in contacts:
            contact.search_text = search_text(terms[contact.pk])
        Contact.objects.using(db).bulk_update(contacts, ["search_text"], batch_size=500)


def trigram_forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGRAM)


def trigram_backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS contact_search_trgm")


def unindexed_organization():
    return models.ForeignKey(
        db_index=False,
        on_delete=django.db.models.deletion.CASCADE,
        related_name="+",
        to="accounts.organization",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("messaging", "0003_jobs"),
    ]

    operations = [
        migrations.AddField(
            model_name="contact",
            name="search_text",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.RunPython(fill_search_text, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(trigram_forwards, trigram_backwards, elidable=False),
        migrations.DeleteModel(name="ContactSearchTerm"),
        migrations.RemoveIndex(model_name="contactgroupmember", name="groupmember_org_contact"),
        migrations.RemoveIndex(model_name="contactidentity", name="identity_org_contact"),
        migrations.RemoveIndex(model_name="contacttag", name="contacttag_org_tag"),
        *(
            migrations.AlterField(
                model_name=model, name="organization", field=unindexed_organization()
            )
            for model in (
                "contact",
                "contactalias",
                "contactgroupmember",
                "contactidentity",
                "contactnote",
                "contacttag",
            )
        ),
    ]
