#!/usr/bin/env python
from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sigmasight.settings.base")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    # Django hides a settings error behind "Models aren't loaded yet"; say what is wrong instead.
    try:
        settings.INSTALLED_APPS  # noqa: B018 - loading the settings is the point
    except ImproperlyConfigured as exc:
        sys.exit(
            f"Configuration error: {exc}\nFor local development set DEBUG=true (see .env.example)."
        )
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
