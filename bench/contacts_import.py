"""Benchmark: a 100k-row CSV through the real import path, against PostgreSQL.

    .venv/bin/python bench/contacts_import.py [--rows 100000] [--runs 3]

Uses its own database (``parley_bench`` on the test server, created anew and migrated here; never
the test suite's). Timed: ``import_upload`` + ``import_set_mapping`` + ``import_start`` +
``import_run`` — the same services the API and the worker call — until the job is done. Ceiling,
same rows, same run: read the CSV + normalize every phone with ``phonenumbers`` (the project's
``normalize_phone``) + one ``COPY`` into the same contact table with all its indexes (its search
text holding the same terms, so the trigram index does the same work). Runs
alternate (real, ceiling, ...); medians are reported. Each run uses a fresh organization, so every
row is a new contact in both paths. Prints:

    RESULT contacts_import value=<rows/s> unit=rows/s ceiling=<rows/s> ratio=<r> peak_rss_mb=<m>
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB_NAME = os.environ.get("BENCH_DATABASE_NAME", "parley_bench")
SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
os.environ["TEST_DATABASE_URL"] = f"{SERVER}/{DB_NAME}"
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
os.environ.setdefault("PARLEY_DATA_DIR", tempfile.mkdtemp(prefix="parley-bench-"))

FIRST = ["Ann", "Bo", "Chen", "Dana", "Eli", "Fatima", "Gus", "陳", "李", "José", "Zoë", "Omar"]
LAST = ["Smith", "Wong", "大文", "García", "O'Neil", "Müller", "Khan", "Lee", "小姐", "Brown"]


def ensure_database() -> None:
    """A new, empty database for every invocation: figures do not drift with what earlier runs
    left behind (a contact table and trigram index growing by 600k rows each time)."""
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def generate(path: Path, rows: int) -> None:
    """Deterministic rows: name, phone (mixed spellings, HK and UK), email, tags."""
    rng = random.Random(20260205)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Name", "Phone", "Email", "Tags"])
        for i in range(rows):
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)} {i}"
            if i % 2:
                hk = str(5000_0000 + i)
                phone = f"+852 {hk[:4]} {hk[4:]}"
            else:
                phone = f"0{7_700_000_000 + i}"  # UK national spelling, read as GB
            email = f"user{i}@example.com" if i % 3 == 0 else ""
            tags = rng.choice(["", "vip", "lead", "vip; lead", "hk"])
            writer.writerow([name, phone, email, tags])


def new_organization(label: str):
    from accounts.models import Organization

    slug = f"bench-{label}-{time.time_ns()}"
    return Organization.objects.create(name=slug, slug=slug, default_country="GB")


def run_real(path: Path) -> tuple[float, int]:
    from messaging.models import Contact
    from messaging.services.imports import (
        import_run,
        import_set_mapping,
        import_start,
        import_upload,
    )

    organization = new_organization("real")
    started = time.perf_counter()
    with path.open("rb") as handle:
        job = import_upload(
            organization=organization, actor=None, fileobj=handle, filename=path.name
        )
    import_set_mapping(organization=organization, job=job, mapping=job.mapping, options={})
    import_start(organization=organization, job=job, actor=None)
    job = import_run(job.pk)
    elapsed = time.perf_counter() - started
    assert job.state == "done", job.failure
    count = Contact.objects.filter(organization=organization).count()
    assert count == job.created_count, (count, job.created_count)
    return elapsed, count


def run_ceiling(path: Path) -> tuple[float, int]:
    from django.db import connection
    from django.utils import timezone

    from messaging.models import Contact
    from messaging.text import normalize_phone

    organization = new_organization("ceiling")
    now = timezone.now()
    started = time.perf_counter()
    columns = (
        "organization_id, name, notify_name, verified_name, display_name, phone, email, "
        "favorite, status, opted_out_source, custom_fields, search_text, created_at, updated_at"
    )
    with path.open(encoding="utf-8", newline="") as handle, connection.cursor() as cursor:
        reader = csv.reader(handle)
        next(reader)
        raw = cursor.connection  # psycopg 3
        with raw.cursor() as pg, pg.copy(f"COPY messaging_contact ({columns}) FROM STDIN") as copy:
            for name, phone, email, _tags in reader:
                digits = normalize_phone(phone, default_country="GB")
                # The same terms the real path indexes (the trigram index costs the same), built
                # with the least work: lowercased, not folded.
                terms = f"\x01{name.lower()}\x01\x04{digits}\x04"
                if email:
                    terms += f"\x03{email}\x03"
                copy.write_row(
                    (
                        organization.pk,
                        name,
                        "",
                        "",
                        name,
                        digits,
                        email,
                        False,
                        "active",
                        "",
                        "{}",
                        terms,
                        now,
                        now,
                    )
                )
    elapsed = time.perf_counter() - started
    count = Contact.objects.filter(organization=organization).count()
    return elapsed, count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.csv"
        generate(path, args.rows)
        real, ceiling = [], []
        for run in range(args.runs):
            seconds, count = run_real(path)
            assert count == args.rows, f"real path imported {count} of {args.rows}"
            real.append(seconds)
            seconds, count = run_ceiling(path)
            assert count == args.rows, f"ceiling copied {count} of {args.rows}"
            ceiling.append(seconds)
            print(
                f"run {run + 1}: real {real[-1]:.2f}s ({args.rows / real[-1]:.0f} rows/s), "
                f"ceiling {ceiling[-1]:.2f}s ({args.rows / ceiling[-1]:.0f} rows/s)",
                file=sys.stderr,
            )
    value = args.rows / statistics.median(real)
    top = args.rows / statistics.median(ceiling)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        f"RESULT contacts_import value={value:.0f} unit=rows/s ceiling={top:.0f} "
        f"ratio={value / top:.2f} peak_rss_mb={peak:.0f}"
    )


if __name__ == "__main__":
    main()
