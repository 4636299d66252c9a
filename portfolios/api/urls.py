from __future__ import annotations

from rest_framework.routers import SimpleRouter

from portfolios.api import views

router = SimpleRouter()
router.register("portfolios", views.PortfolioViewSet, basename="portfolio")
router.register("positions", views.PositionViewSet, basename="position")
router.register("tags", views.TagViewSet, basename="tag")
router.register("strategies", views.StrategyViewSet, basename="strategy")

urlpatterns = router.urls
