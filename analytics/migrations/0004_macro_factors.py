from django.db import migrations

# Macro factors for stress tests: each proxy is a market-data series; Rates is the 10-year yield
# (its factor move is a yield change, not a return).
MACRO = [
    ("Rates", "US10Y", 10, "10-year Treasury yield; moves are yield changes (0.01 = +100bp)."),
    ("Oil", "USO", 11, "Crude oil (United States Oil Fund)."),
    ("Gold", "GLD", 12, "Gold (SPDR Gold Shares)."),
    ("Europe", "EWG", 13, "European equities (iShares MSCI Germany)."),
    ("Emerging Markets", "EEM", 14, "Emerging-market equities."),
    ("China", "FXI", 15, "Chinese large caps."),
    ("Volatility", "VIXY", 16, "VIX short-term futures."),
    ("Credit", "HYG", 17, "High-yield corporate credit."),
    ("Travel", "JETS", 18, "Airlines and travel."),
    ("Technology", "XLK", 19, "US technology sector."),
]


def seed(apps, schema_editor):
    FactorDefinition = apps.get_model("analytics", "FactorDefinition")
    for name, proxy, order, description in MACRO:
        FactorDefinition.objects.update_or_create(
            name=name,
            defaults={"etf_proxy": proxy, "factor_type": "macro", "display_order": order,
                      "is_active": True, "description": description},
        )


def unseed(apps, schema_editor):
    apps.get_model("analytics", "FactorDefinition").objects.filter(name__in=[m[0] for m in MACRO]).delete()


class Migration(migrations.Migration):
    dependencies = [("analytics", "0003_seed_factors")]
    operations = [migrations.RunPython(seed, unseed)]
