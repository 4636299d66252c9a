from __future__ import annotations

from django.apps import AppConfig


class StressConfig(AppConfig):
    name = "stress"
    verbose_name = "Stress testing"
