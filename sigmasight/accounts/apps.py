from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "sigmasight.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from sigmasight.api.fields import use_checked_text_fields

        use_checked_text_fields()
