from django.db import migrations

FACTORS = [
    ("Market", "SPY", 1, True, "Broad US equity market (S&P 500)."),
    ("Value", "VTV", 2, True, "Value stocks, as their return residual to the market."),
    ("Growth", "VUG", 3, True, "Growth stocks, as their return residual to the market."),
    ("Momentum", "MTUM", 4, True, "Recent winners, as their return residual to the market."),
    ("Quality", "QUAL", 5, True, "Profitable, low-leverage firms, residual to the market."),
    ("Size", "SIZE", 6, True, "Size tilt, as its return residual to the market."),
    ("Low Volatility", "USMV", 7, True, "Minimum-volatility stocks, residual to the market."),
    ("Short Interest", "", 8, False, "Defined but inactive: no proxy series yet."),
]


def seed(apps, schema_editor):
    FactorDefinition = apps.get_model("analytics", "FactorDefinition")
    for name, proxy, order, active, description in FACTORS:
        FactorDefinition.objects.update_or_create(
            name=name,
            defaults={"etf_proxy": proxy, "factor_type": "style", "display_order": order,
                      "is_active": active, "description": description},
        )


def unseed(apps, schema_editor):
    apps.get_model("analytics", "FactorDefinition").objects.filter(
        name__in=[f[0] for f in FACTORS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("analytics", "0002_factor_model")]
    operations = [migrations.RunPython(seed, unseed)]
