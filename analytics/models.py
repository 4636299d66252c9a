"""The analytics results. Position-level results (a row per position and session: tens of
thousands a session) index their position only through their unique constraint, whose first
column it is: Django's own index on the foreign key would be a second copy to write for every
row (`db_index=False`)."""

from __future__ import annotations

from django.db import models


class PositionGreeks(models.Model):
    """Position-level Greeks of one option position on one session (mibian's units: theta per
    calendar day, vega per vol point, rho per rate point; position = per share x qty x 100)."""

    class Source(models.TextChoices):
        IMPLIED = "implied", "Implied from the option's own close"
        REALIZED = "realized", "Underlying's realized volatility"
        DEFAULT = "default", "Default volatility from settings"
        MOCK = "mock", "Mock values (no underlying price)"

    position = models.ForeignKey(  # indexed by the unique constraint (module docstring)
        "portfolios.Position",
        on_delete=models.CASCADE,
        related_name="greeks_history",
        db_index=False,
    )
    date = models.DateField()
    delta = models.FloatField()
    gamma = models.FloatField()
    theta = models.FloatField()
    vega = models.FloatField()
    rho = models.FloatField()
    dollar_delta = models.FloatField()
    implied_volatility = models.FloatField(null=True, blank=True)  # solved from its own close
    volatility = models.FloatField()  # the volatility the Greeks used
    volatility_source = models.CharField(max_length=10, choices=Source.choices)
    underlying_price = models.FloatField(null=True, blank=True)
    model_price = models.FloatField(null=True, blank=True)  # model value per share
    risk_free_rate = models.FloatField()
    # The underlying's continuous dividend yield the Greeks used (decimal; 0 without one).
    dividend_yield = models.FloatField(default=0.0)
    # The contract's exercise style: American (Bjerksund-Stensland 2002) or European (BSM).
    exercise_style = models.CharField(
        max_length=8,
        choices=[("american", "American"), ("european", "European")],
        default="european",
    )
    # American minus European value per share (0 for European contracts; null without a spot).
    early_exercise_premium = models.FloatField(null=True, blank=True)
    days_to_expiry = models.IntegerField()
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["position_id", "date"]
        verbose_name_plural = "position Greeks"
        constraints = [
            models.UniqueConstraint(
                fields=["position", "date"], name="positiongreeks_position_date"
            ),
        ]
        indexes = [models.Index(fields=["date", "position"], name="positiongreeks_date_idx")]

    def __str__(self) -> str:
        return f"{self.position_id} {self.date}"


class FactorDefinition(models.Model):
    class FactorType(models.TextChoices):
        STYLE = "style", "Style"
        MACRO = "macro", "Macro"

    name = models.CharField(max_length=50, unique=True)
    etf_proxy = models.CharField(max_length=16, blank=True)
    factor_type = models.CharField(
        max_length=10, choices=FactorType.choices, default=FactorType.STYLE
    )
    display_order = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["display_order", "id"]

    def __str__(self) -> str:
        return self.name


class PositionFactorExposure(models.Model):
    """OLS beta of a position's returns (options: the underlying's) to one factor, and the
    position's dollar exposure to it (exposure x beta; options delta-adjusted by default).

    The largest table (a row per position, factor and session: 170,000 a session at 10,000
    positions). Derived data: its two foreign keys have no database constraint, so PostgreSQL
    does not check and lock the parent row of each of those rows at the factor job's commit
    (about 1 s a session). Deleting a position or a factor definition still deletes its rows:
    Django cascades them (as it does every CASCADE here); only a raw SQL delete of a parent
    could leave rows behind.

    Its key leads with the session: (date, position, factor). Each evening's rows then go to
    the right-hand end of that index instead of to 170,000 places scattered through it (one
    per position and factor, as a key leading with the position did): the factor job's
    upsert of a 5,000-position chunk took 0.49-0.54 s against 0.87-1.0 s on PostgreSQL. The
    same key answers the session's reads (by date and position ids) and the retention's
    delete (by date); a position's own index answers a position's history and its cascade."""

    position = models.ForeignKey(  # indexed by positionfactor_position_idx
        "portfolios.Position",
        on_delete=models.CASCADE,
        related_name="factor_exposures",
        db_index=False,
        db_constraint=False,
    )
    # Not indexed: read through the session's positions, never by factor alone (deleting a
    # factor definition, a rare staff action, scans the table).
    factor = models.ForeignKey(
        FactorDefinition, on_delete=models.CASCADE, db_index=False, db_constraint=False
    )
    date = models.DateField()
    beta = models.FloatField()
    raw_beta = models.FloatField()
    std_error = models.FloatField(null=True)
    dollar_exposure = models.FloatField()
    r_squared = models.FloatField()
    observations = models.IntegerField()
    capped = models.BooleanField(default=False)

    class Meta:
        ordering = ["position_id", "factor_id", "date"]
        constraints = [
            models.UniqueConstraint(
                fields=["date", "position", "factor"], name="positionfactor_session_unique"
            ),
        ]
        indexes = [models.Index(fields=["position"], name="positionfactor_position_idx")]

    def __str__(self) -> str:
        return f"{self.position_id} {self.factor_id} {self.date}"


class PortfolioFactorExposure(models.Model):
    portfolio = models.ForeignKey(
        "portfolios.Portfolio", on_delete=models.CASCADE, related_name="factor_exposures"
    )
    factor = models.ForeignKey(FactorDefinition, on_delete=models.CASCADE)
    date = models.DateField()
    beta = models.FloatField()  # dollar exposure / equity (or / gross, see normalized_by)
    dollar_exposure = models.FloatField()
    normalized_by = models.CharField(max_length=6, default="equity")
    positions_with_beta = models.IntegerField(default=0)
    positions_without_beta = models.IntegerField(default=0)

    class Meta:
        ordering = ["portfolio_id", "factor_id", "date"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "factor", "date"], name="portfoliofactor_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id} {self.factor_id} {self.date}"


class PositionInterestRateBeta(models.Model):
    """OLS slope of a position's daily returns on daily changes of the 10-year yield (decimal)."""

    position = models.ForeignKey(  # indexed by the unique constraint (module docstring)
        "portfolios.Position", on_delete=models.CASCADE, related_name="rate_betas", db_index=False
    )
    date = models.DateField()
    ir_beta = models.FloatField()
    r_squared = models.FloatField()
    observations = models.IntegerField()

    class Meta:
        ordering = ["position_id", "date"]
        constraints = [
            models.UniqueConstraint(fields=["position", "date"], name="positionratebeta_unique")
        ]

    def __str__(self) -> str:
        return f"{self.position_id} {self.date}"


class MarketRiskScenario(models.Model):
    class Kind(models.TextChoices):
        MARKET = "market", "Market move"
        RATES = "rates", "Rate move"

    portfolio = models.ForeignKey(
        "portfolios.Portfolio", on_delete=models.CASCADE, related_name="scenarios"
    )
    date = models.DateField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    move = models.FloatField()  # decimal: -0.01 = market down 1%; 0.005 = yields up 50bp
    predicted_pnl = models.FloatField()  # options fully revalued
    delta_only_pnl = models.FloatField(null=True)
    predicted_return = models.FloatField()

    class Meta:
        ordering = ["portfolio_id", "date", "kind", "move"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "date", "kind", "move"], name="scenario_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id} {self.date} {self.kind} {self.move}"


class RiskMetricSnapshot(models.Model):
    portfolio = models.ForeignKey(
        "portfolios.Portfolio", on_delete=models.CASCADE, related_name="risk_metrics"
    )
    date = models.DateField()
    confidence = models.FloatField()
    horizon_days = models.IntegerField()
    var_historical = models.FloatField()
    # Null when the factor model has no factor with enough history (details.unavailable says).
    var_parametric = models.FloatField(null=True)
    var_monte_carlo = models.FloatField(null=True)
    expected_shortfall = models.FloatField()
    volatility = models.FloatField()
    sharpe = models.FloatField(null=True)
    sortino = models.FloatField(null=True)
    max_drawdown = models.FloatField()
    beta = models.FloatField(null=True)
    backtest = models.JSONField(default=dict)
    observations = models.IntegerField()
    # horizon_method, overlapping (VaR/ES), normalized_by, factor_model, unavailable (measure ->
    # why it is null): analytics.risk_metrics.DETAILS.
    details = models.JSONField(default=dict)

    class Meta:
        ordering = ["portfolio_id", "date"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "date", "confidence", "horizon_days"], name="riskmetric_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id} {self.date} {self.confidence}"


class BatchJob(models.Model):
    """One run of a batch job for a session: what ran, how it went, what failed."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        PARTIAL = "partial", "Partial"

    name = models.CharField(max_length=40)
    run_date = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    counts = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    failed_portfolios = models.JSONField(default=dict)  # portfolio id -> reason
    # Portfolio id -> what was not computed and why, in a job that still succeeded (too little
    # history, a price no source has, a session a series lacks).
    warnings = models.JSONField(default=dict)
    triggered_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The staff trigger (an umbrella row named trigger:...) this job ran under, if any.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    # Liveness of a running job: "host:pid" of an in-process runner (blank on workers, whose
    # chunks run anywhere), and when a chunk of it last started or finished.
    owner = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # Two workers never run the same job for the same session at once.
            models.UniqueConstraint(
                fields=["name", "run_date"],
                condition=models.Q(status__in=["queued", "running"]),
                name="batchjob_one_active_per_session",
            ),
        ]
        indexes = [models.Index(fields=["name", "run_date"], name="batchjob_name_date_idx")]

    def __str__(self) -> str:
        return f"{self.name} {self.run_date} {self.status}"


class BatchJobChunk(models.Model):
    """A chunk of a job that finished (its results committed; the row is written right after):
    a re-run that takes over a killed job carries these over and computes only the rest."""

    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="chunk_records")
    first_portfolio_id = models.BigIntegerField()  # the chunk's key (portfolios are disjoint)
    portfolio_ids = models.JSONField()
    result = models.JSONField()  # counts, failed (portfolio id -> why), retries
    carried = models.BooleanField(default=False)  # finished by the killed run it resumed
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job_id", "first_portfolio_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "first_portfolio_id"], name="batchjobchunk_job_first"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} {self.portfolio_ids}"


class PortfolioSnapshot(models.Model):
    """The portfolio at the close of one NYSE session (money in currency, Greeks as stored)."""

    portfolio = models.ForeignKey(
        "portfolios.Portfolio", on_delete=models.CASCADE, related_name="snapshots"
    )
    date = models.DateField()
    equity = models.DecimalField(max_digits=20, decimal_places=2)
    market_value = models.DecimalField(max_digits=20, decimal_places=2)
    cash = models.DecimalField(max_digits=20, decimal_places=2)
    daily_pnl = models.DecimalField(max_digits=20, decimal_places=2)
    daily_return = models.FloatField()
    cumulative_pnl = models.DecimalField(max_digits=20, decimal_places=2)
    gross_exposure = models.DecimalField(max_digits=20, decimal_places=2)
    net_exposure = models.DecimalField(max_digits=20, decimal_places=2)
    long_exposure = models.DecimalField(max_digits=20, decimal_places=2)
    short_exposure = models.DecimalField(max_digits=20, decimal_places=2)
    delta_adjusted_exposure = models.DecimalField(max_digits=20, decimal_places=2)
    greeks = models.JSONField(default=dict)
    factor_betas = models.JSONField(default=dict)
    position_count = models.IntegerField()
    data_quality = models.JSONField(default=dict)

    class Meta:
        ordering = ["portfolio_id", "date"]
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "date"], name="snapshot_portfolio_date")
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id} {self.date}"


class PortfolioAttribution(models.Model):
    """A portfolio's P&L of one session split into factors and the rest, and its options' P&L
    into their Greeks (analytics.calculations.attribution). Money in the book's currency: the
    sums of its positions' rows (`PositionAttribution`), with specific = total - factor."""

    class Basis(models.TextChoices):
        STORED = "stored", "Previous session's stored exposures and Greeks (the batch)"
        PRO_FORMA = "pro_forma", "Today's holdings and exposures over past closes (history)"

    portfolio = models.ForeignKey(
        "portfolios.Portfolio", on_delete=models.CASCADE, related_name="attributions"
    )
    date = models.DateField()
    total_pnl = models.FloatField()
    factor_pnl = models.FloatField()
    specific_pnl = models.FloatField()
    by_factor = models.JSONField(default=dict)  # {factor name: P&L}
    # {delta, gamma, vega, theta, rho, residual}: summed over the options with an explain.
    greeks = models.JSONField(default=dict)
    basis = models.CharField(max_length=10, choices=Basis.choices, default=Basis.STORED)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["portfolio_id", "date"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "date"], name="portfolioattribution_portfolio_date"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id} {self.date}"


class PositionAttribution(models.Model):
    """A position's P&L of one session: factors (previous session's dollar exposures x the
    session's factor moves) and specific; for an option with both sessions' Greeks, also the
    Greeks explain and its residual (null otherwise: stocks, options without Greeks)."""

    position = models.ForeignKey(  # indexed by the unique constraint (module docstring)
        "portfolios.Position", on_delete=models.CASCADE, related_name="attributions", db_index=False
    )
    date = models.DateField()
    total_pnl = models.FloatField()
    factor_pnl = models.FloatField()
    specific_pnl = models.FloatField()
    by_factor = models.JSONField(default=dict)  # {factor name: P&L}; {} without exposures
    delta_pnl = models.FloatField(null=True, blank=True)
    gamma_pnl = models.FloatField(null=True, blank=True)
    vega_pnl = models.FloatField(null=True, blank=True)
    theta_pnl = models.FloatField(null=True, blank=True)
    rho_pnl = models.FloatField(null=True, blank=True)
    residual_pnl = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["position_id", "date"]
        constraints = [
            models.UniqueConstraint(
                fields=["position", "date"], name="positionattribution_position_date"
            ),
        ]
        indexes = [models.Index(fields=["date", "position"], name="positionattribution_date_idx")]

    def __str__(self) -> str:
        return f"{self.position_id} {self.date}"


from analytics.contribution_models import PortfolioRiskContribution, PositionContributionSet  # noqa: E402,F401
