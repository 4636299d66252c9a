from __future__ import annotations

from django.urls import path

from modeling.api.demo import DemoResetView

urlpatterns = [path("reset/", DemoResetView.as_view(), name="demo-reset")]
