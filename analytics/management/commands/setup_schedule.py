from __future__ import annotations

from django.core.management.base import BaseCommand

from analytics.schedule import schedule_upsert


class Command(BaseCommand):
    help = (
        "Upsert the default beat schedule (keeps staff edits, disables unknown sigmasight entries)."
    )

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in schedule_upsert().items()))
