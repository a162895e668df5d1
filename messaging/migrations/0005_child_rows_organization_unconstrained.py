"""The organization key of a contact's rows (identities, aliases, tags, group memberships, notes)
is no longer a database constraint: it copies the contact's organization, whose key is enforced,
and checking it again cost an import one lookup per row (see ``messaging.models.contacts``)."""

import django.db.models.deletion
from django.db import migrations, models


def copied_organization():
    return models.ForeignKey(
        db_constraint=False,
        db_index=False,
        on_delete=django.db.models.deletion.CASCADE,
        related_name="+",
        to="accounts.organization",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("messaging", "0004_contact_search_text"),
    ]

    operations = [
        migrations.AlterField(model_name=model, name="organization", field=copied_organization())
        for model in (
            "contactalias",
            "contactgroupmember",
            "contactidentity",
            "contactnote",
            "contacttag",
        )
    ]
