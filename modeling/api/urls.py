from __future__ import annotations

from rest_framework.routers import SimpleRouter

from modeling.api import views

router = SimpleRouter()
router.register("sessions", views.SessionViewSet, basename="modeling-session")

urlpatterns = router.urls
