from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from modeling import demo
from sigmasight.exceptions import DomainError


class Command(BaseCommand):
    help = (
        "Seed the demo: a staff login and three demo users with growth, value and balanced "
        "books, 400 sessions of prices, the daily batch for the last session and 90 sessions "
        "of snapshots. Idempotent: only what is missing is made."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="delete the demo users and everything they own, then rebuild",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing when any demo user exists (what `make run` uses)",
        )
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000",
            help="where the server answers, for the printed links",
        )

    def handle(
        self, *args: object, reset: bool, if_empty: bool, url: str, **options: object
    ) -> None:
        if reset and if_empty:
            raise CommandError("--reset and --if-empty contradict each other; give one.")
        if if_empty and demo.demo_users_exist():
            self.stdout.write("Demo users exist; nothing seeded (seed_demo --reset rebuilds).")
        else:
            try:
                report = demo.demo_seed(reset=reset, stdout=self.stdout)
            except DomainError as exc:  # e.g. a batch for the demo date is already running
                raise CommandError(exc.message) from exc
            failed = [job["name"] for job in report.batch if job["status"] != "succeeded"]
            timing = ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())
            line = f"Demo seeded for {report.as_of} ({timing})."
            self.stdout.write(self.style.WARNING(line) if failed else self.style.SUCCESS(line))
            if failed:
                self.stderr.write(f"Batch jobs not fully succeeded: {', '.join(failed)}.")
        self._logins(url.rstrip("/"))

    def _logins(self, url: str) -> None:
        password = demo.demo_password()
        self.stdout.write("")
        self.stdout.write(f"Open      {url}/  (the workbench: sign in with a login below)")
        self.stdout.write(f"Logins (password: {password}, setting SIGMASIGHT_DEMO_PASSWORD):")
        self.stdout.write(f"  {demo.ADMIN_EMAIL:34} staff: the admin and the operations page")
        for book in demo.BOOKS:
            self.stdout.write(f"  {book.email:34} {book.portfolio}")
        self.stdout.write(f"API docs  {url}/api/docs/")
        self.stdout.write(f"Admin     {url}/admin/")
        self.stdout.write(f"Log in    POST {url}/api/v1/auth/login/ {{email, password}}")
