"""`/api/schema/`: drf-spectacular's view, where `?format=json|yaml` picks the rendering."""

from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView
from rest_framework.negotiation import DefaultContentNegotiation


class FormatQueryNegotiation(DefaultContentNegotiation):
    """`?format=json|yaml` chooses the renderer. The API leaves DRF's URL_FORMAT_OVERRIDE off
    (`?format=` is the API's own there, e.g. export/?format=csv), so the schema view asks."""

    def select_renderer(self, request, renderers, format_suffix=None):
        chosen = format_suffix or request.query_params.get("format")
        return super().select_renderer(request, renderers, chosen)


class SchemaView(SpectacularAPIView):
    content_negotiation_class = FormatQueryNegotiation
