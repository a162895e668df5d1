"""CSV import: mapping proposal and memory, encodings, bad rows and their report, merging into
existing contacts, redelivery, the API flow (with a real worker) and the size cap."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.storage import default_storage
from django.test import override_settings

from messaging.models import (
    Contact,
    ContactIdentity,
    CustomField,
    ImportColumnMemory,
    ImportJob,
    JobState,
)
from messaging.services import contacts as contact_services
from messaging.services.imports import (
    PHONE_CELL,
    import_preview,
    import_run,
    import_set_mapping,
    import_start,
    import_upload,
)

pytestmark = pytest.mark.django_db


def upload(cast, content: str | bytes, *, organization=None, name="people.csv", encoding=None):
    data = content.encode() if isinstance(content, str) else content
    return import_upload(
        organization=organization or cast.org_a,
        actor=cast.owner,
        fileobj=io.BytesIO(data),
        filename=name,
        encoding=encoding,
    )


def run(cast, job: ImportJob, mapping=None, **options) -> ImportJob:
    import_set_mapping(
        organization=job.organization, job=job, mapping=mapping or job.mapping, options=options
    )
    import_start(organization=job.organization, job=job, actor=cast.owner)
    import_run(job.pk)
    job.refresh_from_db()
    return job


def report_rows(job: ImportJob) -> list[list[str]]:
    with default_storage.open(job.error_report.name, "rb") as stored:
        text = stored.read().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def contact_by_phone(organization, phone: str) -> Contact:
    return ContactIdentity.objects.get(organization=organization, value=phone).contact


# --- Mapping ------------------------------------------------------------------------------------


def test_it_proposes_a_mapping_from_the_headers(cast):
    # Given a custom field "Birthday" (key birthday)
    contact_services.custom_field_define(
        organization=cast.org_a, key="birthday", label="Birthday", type="date"
    )
    # When a file with everyday header names is uploaded
    job = upload(
        cast,
        "Full Name,Mobile,E-mail,Nickname,Tags,Groups,Favourite,Status,Push name,Birthday,Notes\n"
        "Ann,+447700900001,ann@x.example,Annie,vip,Leads,yes,active,Ann W,2001-02-03,hi\n",
    )
    # Then each header is mapped to the field a person would pick, unknown ones skipped
    assert job.mapping == {
        "Full Name": "name",
        "Mobile": "phone",
        "E-mail": "email",
        "Nickname": "aliases",
        "Tags": "tags",
        "Groups": "groups",
        "Favourite": "favorite",
        "Status": "status",
        "Push name": "notify_name",
        "Birthday": "cf.birthday",
        "Notes": "",
    }
    assert job.state == JobState.DRAFT and job.delimiter == ","


def test_it_remembers_a_mapping_for_the_next_file(cast):
    # Given a first file whose odd header "Kontakt-Nr" the user mapped to phone
    first = upload(cast, "Kontakt-Nr,Wer\n+447700900001,Ann\n")
    assert first.mapping == {"Kontakt-Nr": "", "Wer": ""}
    import_set_mapping(
        organization=cast.org_a,
        job=first,
        mapping={"Kontakt-Nr": "phone", "Wer": "name"},
        options={},
    )
    # When another file with those headers arrives
    second = upload(cast, "kontakt nr;WER\n+447700900002;Bo\n")
    # Then the remembered mapping is proposed (headers folded), and only in this organization
    assert second.mapping == {"kontakt nr": "phone", "WER": "name"}
    assert ImportColumnMemory.objects.filter(organization=cast.org_b).count() == 0
    other = upload(cast, "Kontakt-Nr\n+447700900003\n", organization=cast.org_b)
    assert other.mapping == {"Kontakt-Nr": ""}


def test_it_refuses_a_mapping_without_a_phone_or_with_unknown_fields(cast):
    job = upload(cast, "name,phone\nAnn,+447700900001\n")
    from crm.errors import ApplicationError

    with pytest.raises(ApplicationError) as no_phone:
        import_set_mapping(organization=cast.org_a, job=job, mapping={"name": "name"}, options={})
    assert "phone" in no_phone.value.fields["mapping"][0]
    with pytest.raises(ApplicationError) as unknown:
        import_set_mapping(
            organization=cast.org_a,
            job=job,
            mapping={"name": "cf.nope", "phone": "phone"},
            options={},
        )
    assert unknown.value.fields == {"mapping.name": ["Unknown field."]}


# --- Encodings ----------------------------------------------------------------------------------

NAMES = ["張三", "李小姐", "陳大文"]


@pytest.mark.parametrize(
    ("encoded", "detected"),
    [
        (lambda text: text.encode("utf-8"), "utf-8"),
        (lambda text: text.encode("utf-8-sig"), "utf-8-sig"),
        (lambda text: text.encode("utf-16"), "utf-16"),
        (lambda text: text.encode("big5"), "big5"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16", "big5"],
)
def test_it_reads_chinese_names_in_every_supported_encoding(cast, encoded, detected):
    # Given a file of Chinese names in one of the encodings our Hong Kong users send
    text = "姓名,電話\r\n" + "".join(f"{name},+8529718867{i}\r\n" for i, name in enumerate(NAMES))
    job = upload(cast, encoded(text))
    # Then the encoding is detected and the Chinese headers are understood
    assert job.encoding == detected
    assert job.mapping == {"姓名": "name", "電話": "phone"}
    # And the names arrive intact
    job = run(cast, job)
    assert job.state == JobState.DONE and job.created_count == 3 and job.error_count == 0
    assert sorted(
        Contact.objects.filter(organization=cast.org_a).values_list("name", flat=True)
    ) == sorted(NAMES)


def test_it_uses_the_encoding_the_user_chose(cast):
    # Given a cp1252 file the user says is cp1252
    job = upload(cast, "name,phone\nJosé Ñúñez,+447700900001\n".encode("cp1252"), encoding="cp1252")
    job = run(cast, job)
    assert Contact.objects.get(organization=cast.org_a).name == "José Ñúñez"


# --- Bad rows -----------------------------------------------------------------------------------


def test_it_imports_the_good_rows_and_reports_every_bad_one(cast):
    # Given a number custom field and a file with one of each kind of bad row
    contact_services.custom_field_define(
        organization=cast.org_a, key="visits", label="Visits", type="number"
    )
    content = (
        "name,phone,email,status,visits\n"  # row 1
        "Good One,+447700900001,one@x.example,active,3\n"  # 2 ok
        "Bad Phone,not a number,,,\n"  # 3
        "Bad Email,+447700900003,not-an-email,,\n"  # 4
        "Bad Status,+447700900004,,sleeping,\n"  # 5
        "Bad Field,+447700900005,,,lots\n"  # 6
        "Too Few,+447700900006\n"  # 7
        ",,,,\n"  # 8
        "Again,+44 7700 900001,,,\n"  # 9 duplicate of row 2
        '"Multi\nLine",+447700900009,,blocked,7\n'  # 10 ok (one row with a line break)
        'Broken "quote,+447700900010,x,y,z,extra,cells\n'  # 11
        "Good Two,+447700900011,,,\n"  # 12 ok
    )
    job = upload(cast, content)

    # When it runs
    job = run(cast, job)

    # Then the good rows are contacts and the counts add up
    assert job.state == JobState.DONE
    assert (job.total_rows, job.processed_rows) == (11, 11)
    assert (job.created_count, job.updated_count, job.error_count) == (3, 0, 8)
    names = set(Contact.objects.filter(organization=cast.org_a).values_list("name", flat=True))
    assert names == {"Good One", "Multi\nLine", "Good Two"}
    assert Contact.objects.get(organization=cast.org_a, name="Multi\nLine").custom_fields == {
        "visits": 7
    }

    # And the report names each bad row with its reason and original cells
    rows = report_rows(job)
    assert rows[0] == ["row", "reason", "name", "phone", "email", "status", "visits"]
    by_row = {int(r[0]): r for r in rows[1:]}
    assert sorted(by_row) == [3, 4, 5, 6, 7, 8, 9, 11]
    assert "not a number" in by_row[3][1] and by_row[3][2:] == [
        "Bad Phone",
        "not a number",
        "",
        "",
        "",
    ]
    assert "Email" in by_row[4][1]
    assert "sleeping" in by_row[5][1]
    assert by_row[6][1].startswith("Visits:")
    assert "Expected 5 columns, found 2" in by_row[7][1]
    assert by_row[8][1] == "Empty row."
    assert "repeats row 2" in by_row[9][1]
    assert "Expected 5 columns" in by_row[11][1]


def test_the_preview_shows_values_and_problems_without_writing(cast):
    existing = contact_services.contact_create(
        organization=cast.org_a, data={"name": "Known", "phone": "+447700900001"}
    )
    job = upload(
        cast,
        "name,phone\nKnown Again,+447700900001\nNew,+447700900002\nNope,12\nNew,+447700900002\n",
    )
    preview = import_preview(organization=cast.org_a, job=job)
    rows = {r["row"]: r for r in preview["rows"]}
    assert rows[2]["action"] == "update" and rows[2]["contact_id"] == existing.pk
    assert rows[2]["notes"] == [f"Would update existing contact #{existing.pk}."]
    assert rows[3]["action"] == "create" and rows[3]["values"]["phone"] == "+447700900002"
    assert rows[4]["action"] == "skip" and "not a number we can read" in rows[4]["problems"][0]
    assert "repeats row 3" in rows[5]["problems"][0]
    assert Contact.objects.filter(organization=cast.org_a).count() == 1


# --- Merging ------------------------------------------------------------------------------------


def existing_contact(cast):
    return contact_services.contact_create(
        organization=cast.org_a,
        data={
            "name": "Old Name",
            "phone": "+447700900001",
            "email": "",
            "tags": ["old-tag"],
            "groups": ["Old group"],
        },
    )


MERGE_FILE = (
    "name,phone,email,tags,groups,other phones\n"
    "New Name,+447700900001,new@x.example,new-tag,New group,+447700900099\n"
)


def test_it_merges_into_an_existing_contact_filling_blanks_only(cast):
    # Given a contact with a name but no email
    contact = existing_contact(cast)
    # When a row with the same phone (in another spelling) is imported without overwrite
    cast.org_a.default_country = "GB"
    cast.org_a.save()
    job = run(cast, upload(cast, MERGE_FILE.replace("+447700900001", "07700 900001")))

    # Then no second contact appears; the blank email is filled, the name kept
    assert (job.created_count, job.updated_count) == (0, 1)
    assert Contact.objects.filter(organization=cast.org_a).count() == 1
    contact.refresh_from_db()
    assert (contact.name, contact.email) == ("Old Name", "new@x.example")
    # And tags and groups are unioned, the other phone becomes an identity of the same contact
    assert sorted(t.tag.name for t in contact.contact_tags.all()) == ["new-tag", "old-tag"]
    assert sorted(m.group.name for m in contact.group_memberships.all()) == [
        "New group",
        "Old group",
    ]
    assert contact_by_phone(cast.org_a, "447700900099") == contact


def test_it_overwrites_existing_fields_when_asked(cast):
    contact = existing_contact(cast)
    job = run(cast, upload(cast, MERGE_FILE), overwrite=True, add_tags=["imported"])
    assert job.updated_count == 1
    contact.refresh_from_db()
    assert (contact.name, contact.display_name) == ("New Name", "New Name")
    assert sorted(t.tag.name for t in contact.contact_tags.all()) == [
        "imported",
        "new-tag",
        "old-tag",
    ]
    # And search finds the contact by its new name
    from messaging.selectors import contact_search

    assert list(contact_search(organization=cast.org_a, query="new name")) == [contact]


def test_running_the_task_twice_imports_nothing_twice(cast):
    # Given a queued import
    job = upload(cast, "name,phone\nAnn,+447700900001\nBo,+447700900002\n")
    import_set_mapping(organization=cast.org_a, job=job, mapping=job.mapping, options={})
    import_start(organization=cast.org_a, job=job, actor=cast.owner)
    # When the task is delivered twice
    first = import_run(job.pk)
    second = import_run(job.pk)
    # Then the second delivery does nothing
    assert first.created_count == 2 and second is None
    assert Contact.objects.filter(organization=cast.org_a).count() == 2
    job.refresh_from_db()
    assert (job.state, job.created_count) == (JobState.DONE, 2)


def test_importing_the_same_file_again_updates_instead_of_doubling(cast):
    content = "name,phone\nAnn,+447700900001\nBo,+447700900002\n"
    run(cast, upload(cast, content))
    again = run(cast, upload(cast, content))
    assert (again.created_count, again.updated_count) == (0, 2)
    assert Contact.objects.filter(organization=cast.org_a).count() == 2


def test_it_spans_batches_and_reports_progress(cast, monkeypatch):
    from messaging.services import imports

    monkeypatch.setattr(imports, "BATCH_SIZE", 7)
    pushes = []
    monkeypatch.setattr(imports, "push", lambda group, event, data: pushes.append(dict(data)))
    rows = "".join(f"P{i},+4477009{i:05d}\n" for i in range(30))
    job = run(cast, upload(cast, "name,phone\n" + rows + "Dup,+447700900003\n"))
    assert (job.created_count, job.error_count, job.processed_rows) == (30, 1, 31)
    assert [p["processed_rows"] for p in pushes if p["state"] == "running"] == [7, 14, 21, 28]
    assert pushes[-1]["state"] == "done" and pushes[-1]["created_count"] == 30


def test_a_crash_fails_the_job_and_says_how_far_it_got(cast, monkeypatch):
    from messaging.services import imports

    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    real = imports._phone_holders
    calls = []

    def flaky(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real(*args)

    monkeypatch.setattr(imports, "_phone_holders", flaky)
    job = run(cast, upload(cast, "name,phone\nA,+447700900001\nB,+447700900002\nC,+447700900003\n"))
    assert job.state == JobState.FAILED
    assert "disk on fire" in job.failure and "rows 2 to 3" in job.failure
    assert job.created_count == 2 and Contact.objects.filter(organization=cast.org_a).count() == 2


# --- Size cap -----------------------------------------------------------------------------------


@override_settings(PARLEY_IMPORT_MAX_BYTES=1000)
def test_a_file_over_the_cap_is_refused_and_nothing_is_kept(cast):
    from messaging.services.imports import UploadTooLarge

    with pytest.raises(UploadTooLarge):
        upload(cast, "name,phone\n" + "x,+447700900001\n" * 200)
    assert ImportJob.objects.count() == 0


# --- API ----------------------------------------------------------------------------------------


@override_settings(PARLEY_IMPORT_MAX_BYTES=1000)
def test_it_answers_413_to_a_too_large_upload(cast, api):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = api(cast.agent)
    big = SimpleUploadedFile("big.csv", b"name,phone\n" + b"x,+447700900001\n" * 200)
    response = client.post("/api/v1/imports/", {"file": big}, format="multipart")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_a_viewer_cannot_upload(cast, api):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = api(cast.viewer).post(
        "/api/v1/imports/",
        {"file": SimpleUploadedFile("a.csv", b"name,phone\nA,+447700900001\n")},
        format="multipart",
    )
    assert response.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_it_runs_the_api_flow_with_a_real_worker(cast, api, celery_worker):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = api(cast.agent)
    # Given an uploaded file
    created = client.post(
        "/api/v1/imports/",
        {
            "file": SimpleUploadedFile(
                "team.csv", "Name,Phone,Label\n陳大文,+85297188675,vip\nBad,nope,x\n".encode()
            )
        },
        format="multipart",
    )
    assert created.status_code == 201, created.content
    job = created.json()
    assert job["state"] == "draft" and job["headers"] == ["Name", "Phone", "Label"]
    assert job["mapping"] == {"Name": "name", "Phone": "phone", "Label": "tags"}

    # When the mapping is confirmed, previewed and the import started
    mapped = client.post(
        f"/api/v1/imports/{job['id']}/mapping/",
        {"mapping": job["mapping"], "options": {"add_groups": ["From API"]}},
        format="json",
    )
    assert mapped.status_code == 200, mapped.content
    preview = client.get(f"/api/v1/imports/{job['id']}/preview/").json()
    assert [r["action"] for r in preview["rows"]] == ["create", "skip"]
    started = client.post(f"/api/v1/imports/{job['id']}/start/")
    assert started.status_code == 202 and started.json()["state"] == "queued"

    # Then the worker finishes it
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = client.get(f"/api/v1/imports/{job['id']}/").json()
        if status["state"] in {"done", "failed"}:
            break
        time.sleep(0.2)
    assert status["state"] == "done", (status, celery_worker.output[-20:])
    assert (status["created_count"], status["error_count"], status["progress"]) == (1, 1, 1.0)
    contact = Contact.objects.get(organization=cast.org_a)
    assert contact.name == "陳大文" and contact.group_memberships.get().group.name == "From API"

    # And the error report is downloadable
    report = client.get(f"/api/v1/imports/{job['id']}/errors/")
    assert report.status_code == 200
    lines = b"".join(report.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0] == "row,reason,Name,Phone,Label" and lines[1].startswith("3,")
    # And a started import can no longer be cancelled
    assert client.delete(f"/api/v1/imports/{job['id']}/").status_code == 400


def test_a_draft_can_be_cancelled(cast, api):
    job = upload(cast, "name,phone\nA,+447700900001\n")
    response = api(cast.agent).delete(f"/api/v1/imports/{job.pk}/")
    assert response.status_code == 204
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED


def test_a_bad_mapping_is_a_400_with_fields(cast, api):
    job = upload(cast, "name,phone\nA,+447700900001\n")
    response = api(cast.agent).post(
        f"/api/v1/imports/{job.pk}/mapping/",
        {"mapping": {"name": "shoe size", "phone": "phone"}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"mapping.name": ["Unknown field."]}


def test_a_custom_field_value_is_checked_against_its_definition(cast):
    CustomField.objects.create(
        organization=cast.org_a, key="tier", label="Tier", type="choice", choices=["gold", "silver"]
    )
    job = run(cast, upload(cast, "phone,tier\n+447700900001,gold\n+447700900002,bronze\n"))
    assert (job.created_count, job.error_count) == (1, 1)
    assert "Tier: Choose one of: gold, silver." in report_rows(job)[1][1]


def test_new_contacts_get_the_same_search_text_as_the_contact_services_build(cast):
    # Given contacts created by the import's fast path
    run(
        cast,
        upload(
            cast,
            "name,notify,phone,other phones,email,aliases\n"
            "José Álvarez,Pepe,+447700900001,+447700900002,Jose@X.example,Jo; JO; Big J\n"
            "陳大文,,+85297188675,,,大文\n",
        ),
    )

    def terms():
        return sorted(
            Contact.objects.filter(organization=cast.org_a).values_list("pk", "search_text")
        )

    imported = terms()
    # When the contact services rebuild them
    Contact.objects.filter(organization=cast.org_a).update(search_text="")
    contact_services.search_text_rebuild(
        organization=cast.org_a,
        contact_ids=Contact.objects.filter(organization=cast.org_a).values_list("pk", flat=True),
    )
    # Then nothing changes
    assert imported == terms() and len(imported) == 2
    jose, chan = (text for _pk, text in imported)
    assert "\x02big j\x02" in jose and "\x04447700900002\x04" in jose and "\x01pepe\x01" in jose
    assert "\x01陳大文\x01" in chan and "\x0285297188675" not in chan


def test_it_refuses_an_oversized_upload_in_the_dashboard_without_storing_it(cast, client, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from messaging.models import ImportJob

    settings.PARLEY_MAX_UPLOAD_BYTES = settings.PARLEY_IMPORT_MAX_BYTES = 2_000
    client.force_login(cast.agent)
    big = SimpleUploadedFile(
        "big.csv", b"name,phone\n" + b"Someone,+447700900123\n" * 500, content_type="text/csv"
    )
    response = client.post("/o/acme/contacts/import/", {"file": big})
    assert response.status_code == 413
    assert b"too large" in response.content
    assert not ImportJob.objects.exists()


@pytest.mark.django_db(transaction=True)  # the cancelled file is deleted on commit
def test_previewing_a_cancelled_import_says_it_was_cancelled(cast, api):
    client = api(cast.agent)
    job = upload(cast, "name,phone\nA,+447700900001\n")
    assert client.get(f"/api/v1/imports/{job.pk}/preview/").status_code == 200
    assert client.delete(f"/api/v1/imports/{job.pk}/").status_code == 204
    assert not default_storage.exists(job.upload.name)

    response = client.get(f"/api/v1/imports/{job.pk}/preview/")

    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "cancelled",
        "message": "This import was cancelled: its file is no longer kept.",
        "fields": {},
    }


def test_previewing_an_import_whose_file_is_gone_asks_for_it_again(cast, api):
    job = upload(cast, "name,phone\nA,+447700900001\n")
    default_storage.delete(job.upload.name)

    response = api(cast.agent).get(f"/api/v1/imports/{job.pk}/preview/")

    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        "The uploaded file of this import is no longer kept: upload it again."
    )


def test_the_error_report_never_hands_a_formula_to_a_spreadsheet(cast):
    # Given a file whose bad rows carry formulas, raw and already neutralized
    content = (
        "name,phone,email\n"
        '"=HYPERLINK(""http://evil.example"",""x"")",not a number,\n'
        "'=1+1,+447700900002,not-an-email\n"
        "@SUM(A1),nope,\n"
    )

    job = run(cast, upload(cast, content))

    # Then no cell of the report starts a formula, and a fixed report imports the same values
    rows = report_rows(job)[1:]
    cells = [cell for row in rows for cell in row[2:]]
    runs = [c for c in cells if c.startswith(("=", "+", "-", "@")) and not PHONE_CELL.fullmatch(c)]
    assert runs == []
    assert [row[2] for row in rows] == [
        '\'=HYPERLINK("http://evil.example","x")',
        "'=1+1",
        "'@SUM(A1)",
    ]
