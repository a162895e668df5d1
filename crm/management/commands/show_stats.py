"""manage.py show_stats [--json]: every section registered in crm/stats.py."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from crm.management.base import OperatorCommand, format_table
from crm.stats import collect_stats


class Command(OperatorCommand):
    help = "Counts per organization, totals, and the last worker heartbeat."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Machine-readable output.")

    def handle(self, *args: Any, **options: Any) -> None:
        sections = collect_stats()
        if options["json"]:
            data = {section["key"]: self.as_json(section) for section in sections}
            self.stdout.write(json.dumps(data, cls=DjangoJSONEncoder, indent=2))
            return
        for section in sections:
            self.write_section(section)

    @staticmethod
    def as_json(section: dict[str, Any]) -> dict[str, Any]:
        """Rows and totals as they are; single facts at the top level (``.worker.hostname``)."""
        data = {k: v for k, v in section.items() if k in ("rows", "totals")}
        data.update(section.get("values") or {})
        return data

    def write_section(self, section: dict[str, Any]) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(section.get("title", section["key"])))
        if "rows" in section:
            rows = section["rows"]
            columns = section.get("columns") or [(k, k) for k in (rows[0] if rows else {})]
            if rows:
                self.stdout.write(format_table(rows, columns))
            else:
                self.stdout.write("(none)")
        for label, values in (("Totals", section.get("totals")), (None, section.get("values"))):
            if not values:
                continue
            if label:
                self.stdout.write(label + ":")
            for key, value in values.items():
                if isinstance(value, dict):
                    value = ", ".join(f"{k} {v}" for k, v in value.items())
                self.stdout.write(f"  {key.replace('_', ' ')}: {'-' if value is None else value}")
        self.stdout.write("")
