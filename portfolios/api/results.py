"""The base of every view that serves one portfolio's stored or derived results.

A result view declares what varies and computes the body; the base does the rest in one order:
validate the query (400), find the user's portfolio (404 for another user's), resolve the session
(`as_of`), then answer from the API cache (sigmasight.api.caching) or compute.

    @extend_schema(responses={200: SummarySerializer}, tags=["portfolios"])
    class PortfolioSummaryView(ResultView):
        query_serializer = AsOfQuery
        cache_view = "summary"
        portfolio_kwarg = "pk"

        def compute(self, *, portfolio, as_of, query):
            return SummarySerializer(portfolio_summary(portfolio=portfolio, as_of=as_of)).data

The query serializer is also the operation's query parameters in the schema (ResultSchema).
"""

from __future__ import annotations

import inspect
from datetime import date
from typing import Any, ClassVar, cast

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata.calendar import session_for
from portfolios.models import Portfolio
from portfolios.selectors import portfolio_for
from sigmasight.api.caching import cached_response
from sigmasight.api.query import AsOfQuery, QuerySerializer
from sigmasight.api.schema import AutoSchema


class ResultSchema(AutoSchema):
    """The view's query serializer is its query parameters, before any `extend_schema` ones."""

    def get_override_parameters(self) -> list[Any]:
        view = cast("ResultView", self.view)
        return [view.query_serializer, *super().get_override_parameters()]

    def get_description(self) -> str:  # type: ignore[override]  # drf-spectacular's signature
        # Only the endpoint's own class documents it: the bases' docstrings describe the code.
        doc = type(self.view).__dict__.get("__doc__")
        return inspect.cleandoc(doc) if doc else ""


class ResultView(APIView):
    """GET one portfolio's result: query -> portfolio -> session -> cache -> `compute`."""

    schema = ResultSchema()

    # Validates the query string; its `portfolio` (when it has one and no URL kwarg names the
    # portfolio) picks the portfolio, its `as_of` the session.
    query_serializer: ClassVar[type[QuerySerializer]] = AsOfQuery
    # The view's name in the cache key and the cache metrics (sigmasight.api.caching).
    cache_view: ClassVar[str]
    # The URL kwarg holding the portfolio id; None: `?portfolio=`, else the user's first one.
    portfolio_kwarg: ClassVar[str | None] = None
    # Whether the result is for one session (`as_of`); without, `compute` gets `as_of=None`.
    takes_session: ClassVar[bool] = True

    def get(self, request: Request, **kwargs: Any) -> Response:
        query = self.query_serializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params: dict[str, Any] = dict(query.validated_data)
        portfolio_id = (
            kwargs[self.portfolio_kwarg] if self.portfolio_kwarg else params.get("portfolio")
        )
        portfolio = portfolio_for(request, portfolio_id)
        as_of = self.session(portfolio, params.get("as_of")) if self.takes_session else None
        key = {**params, "as_of": as_of} if self.takes_session else params
        return cached_response(
            self.cache_view,
            portfolio.pk,
            key,
            lambda: Response(self.compute(portfolio=portfolio, as_of=as_of, query=params)),
        )

    def session(self, portfolio: Portfolio, asked: date | None) -> date:
        """The session the result is for: the one asked (or the one before, if not a trading
        day), else the last completed one."""
        return session_for(asked)

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict[str, Any]) -> Any:
        """The response body for this portfolio, session and validated query."""
        raise NotImplementedError
