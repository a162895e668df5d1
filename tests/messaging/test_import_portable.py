"""The import writes the same address book on SQLite (the embedded mode: ``bulk_create``) as on
PostgreSQL (a staging table and one set-based statement per batch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CSV = (
    "name,phone,other phones,email,aliases,tags,groups,favorite\n"
    "José Álvarez,+447700900001,+447700900002,jose@example.com,Pepe; PEPE; Jo,vip; lead,Madrid,yes\n"
    "陳大文,+85297188675,,,大文,vip,,no\n"
    "Existing Person,+447700900009,,,,lead,Leeds,\n"
    "Bad,not a phone,,,,,,\n"
    "Repeat,+447700900001,,,,,,\n"
    "National,07700900003,,,,,,\n"  # not a number where the organization is
)

SCRIPT = """
import io, json
from accounts.models import User
from accounts.services import organization_create
from messaging.models import Contact
from messaging.services import contacts as svc
from messaging.services.imports import import_run, import_set_mapping, import_start, import_upload


def summary(org, job):
    contacts = []
    for c in Contact.objects.filter(organization=org).order_by("phone"):
        contacts.append({
            "name": c.name, "phone": c.phone, "email": c.email, "favorite": c.favorite,
            "search_text": c.search_text,
            "identities": sorted(c.identities.values_list("kind", "value")),
            "aliases": sorted(c.aliases.values_list("alias", flat=True)),
            "tags": sorted(c.contact_tags.values_list("tag__name", flat=True)),
            "groups": sorted(c.group_memberships.values_list("group__name", flat=True)),
        })
    counts = [job.created_count, job.updated_count, job.error_count, job.processed_rows]
    return {"counts": counts, "contacts": contacts}


def run_import(org, owner, text):
    svc.contact_create(organization=org, data={"name": "", "phone": "+447700900009"})
    job = import_upload(organization=org, actor=owner, fileobj=io.BytesIO(text.encode()),
                        filename="people.csv")
    import_set_mapping(organization=org, job=job, mapping=job.mapping,
                       options={"add_tags": ["imported"]})
    import_start(organization=org, job=job, actor=owner)
    import_run(job.pk)
    job.refresh_from_db()
    return summary(org, job)
"""


def _run_here(org, owner) -> dict:
    namespace: dict = {}
    exec(SCRIPT, namespace)  # noqa: S102 - the same code as the SQLite run, read from this file
    return namespace["run_import"](org, owner, CSV)


@pytest.mark.django_db
def test_an_import_writes_the_same_address_book_on_sqlite_and_postgresql(cast, tmp_path):
    on_postgresql = json.loads(json.dumps(_run_here(cast.org_a, cast.owner)))  # as the other

    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "PARLEY_ENV"}
    }
    env.update({"DJANGO_SETTINGS_MODULE": "crm.settings", "PARLEY_DATA_DIR": str(tmp_path)})
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    script = tmp_path / "run_import.py"
    script.write_text(
        "import json, os, sys, django\n"
        f"sys.path.insert(0, {str(ROOT)!r})\ndjango.setup()\n"
        + SCRIPT
        + "owner = User.objects.create_user('import@example.com', 'import password 99')\n"
        "org = organization_create(name='Portable', owner=owner, default_country=sys.argv[2])\n"
        "print(json.dumps(run_import(org, owner, sys.argv[1])))\n"
    )
    result = subprocess.run(
        [sys.executable, str(script), CSV, cast.org_a.default_country],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    on_sqlite = json.loads(result.stdout.strip().splitlines()[-1])

    assert on_sqlite == on_postgresql
    assert on_postgresql["counts"] == [2, 1, 3, 6]  # bad phone, repeated phone, national number
    jose = next(c for c in on_postgresql["contacts"] if c["phone"] == "447700900001")
    assert jose["aliases"] == ["Jo", "Pepe"]
    assert jose["tags"] == ["imported", "lead", "vip"] and jose["groups"] == ["Madrid"]
    assert jose["identities"] == [["phone", "447700900001"], ["phone", "447700900002"]]
    existing = next(c for c in on_postgresql["contacts"] if c["phone"] == "447700900009")
    assert existing["name"] == "Existing Person" and existing["tags"] == ["imported", "lead"]
