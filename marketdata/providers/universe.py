"""What the synthetic market knows about instruments: factor proxies, sectors, loadings.

Loadings are per-day return sensitivities to the synthetic factors (see synthetic.FACTORS).
Known tickers carry their real GICS sector; unknown tickers get a sector chosen by a stable hash
of the symbol, so any symbol a user uploads has plausible, repeatable prices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Factor proxies: each follows its factor (styles on top of the market, DESIGN.md residual rule).
PROXIES: dict[str, dict[str, float]] = {
    "SPY": {"market": 1.0},
    "VTV": {"market": 0.95, "value": 1.0},
    "VUG": {"market": 1.05, "growth": 1.0},
    "MTUM": {"market": 1.0, "momentum": 1.0},
    "QUAL": {"market": 0.98, "quality": 1.0},
    "SIZE": {"market": 1.0, "size": 1.0},
    "USMV": {"market": 0.75, "low_vol": 1.0},
    "USO": {"oil": 1.0},
    "GLD": {"gold": 1.0},
    "EWG": {"europe": 1.0},
    "EEM": {"em": 1.0},
    "FXI": {"china": 1.0},
    "VIXY": {"volatility": 1.0},
    "HYG": {"credit": 1.0},
    "JETS": {"travel": 1.0},
    "XLK": {"tech": 1.0},
    # Broad ETFs a demo book holds.
    "QQQ": {"market": 1.1, "growth": 0.6, "tech": 0.2},
    "IWM": {"market": 1.1, "size": 0.9},
    "DIA": {"market": 0.95, "value": 0.3},
    "TLT": {"rates": -17.0},
    "XLF": {"market": 1.1, "value": 0.6, "rates": 4.0},
    "XLE": {"market": 0.7, "oil": 0.6, "value": 0.4},
    "XLU": {"market": 0.5, "low_vol": 0.8, "rates": -6.0},
}
PROXY_IDIO_VOL = 0.0012  # tracking noise of an ETF around its factors, per day
INDEX_SYMBOLS = {"^VIX": "volatility", "^GSPC": "market"}

ETF_NAMES = {
    "SPY": "SPDR S&P 500 ETF",
    "VTV": "Vanguard Value ETF",
    "VUG": "Vanguard Growth ETF",
    "MTUM": "iShares MSCI USA Momentum Factor ETF",
    "QUAL": "iShares MSCI USA Quality Factor ETF",
    "SIZE": "iShares MSCI USA Size Factor ETF",
    "USMV": "iShares MSCI USA Min Vol Factor ETF",
    "USO": "United States Oil Fund",
    "GLD": "SPDR Gold Shares",
    "EWG": "iShares MSCI Germany ETF",
    "EEM": "iShares MSCI Emerging Markets ETF",
    "FXI": "iShares China Large-Cap ETF",
    "VIXY": "ProShares VIX Short-Term Futures ETF",
    "HYG": "iShares iBoxx High Yield Corporate Bond ETF",
    "JETS": "U.S. Global Jets ETF",
    "XLK": "Technology Select Sector SPDR",
    "QQQ": "Invesco QQQ Trust",
    "IWM": "iShares Russell 2000 ETF",
    "DIA": "SPDR Dow Jones Industrial Average ETF",
    "TLT": "iShares 20+ Year Treasury Bond ETF",
    "XLF": "Financial Select Sector SPDR",
    "XLE": "Energy Select Sector SPDR",
    "XLU": "Utilities Select Sector SPDR",
}

# Sector templates: loadings shared by the sector's stocks before per-symbol jitter.
SECTOR_LOADINGS: dict[str, dict[str, float]] = {
    "Technology": {"market": 1.2, "growth": 0.6, "value": -0.2, "tech": 0.25, "momentum": 0.2},
    "Communication Services": {"market": 1.1, "growth": 0.4, "tech": 0.1},
    "Consumer Cyclical": {"market": 1.15, "growth": 0.3, "size": 0.1},
    "Consumer Defensive": {"market": 0.6, "low_vol": 0.5, "quality": 0.3},
    "Financial Services": {"market": 1.1, "value": 0.6, "rates": 5.0, "credit": 0.2},
    "Energy": {"market": 0.8, "oil": 0.55, "value": 0.5},
    "Industrials": {"market": 1.05, "value": 0.3, "size": 0.1},
    "Healthcare": {"market": 0.8, "quality": 0.4, "low_vol": 0.2},
    "Utilities": {"market": 0.5, "low_vol": 0.7, "rates": -6.0},
    "Basic Materials": {"market": 1.0, "value": 0.3, "gold": 0.1, "em": 0.1},
    "Real Estate": {"market": 0.9, "rates": -7.0, "value": 0.2},
}


@dataclass(frozen=True)
class Profile:
    name: str
    sector: str
    industry: str
    extra: dict[str, float] = field(default_factory=dict)  # added to the sector template


def _p(name: str, sector: str, industry: str, **extra: float) -> Profile:
    return Profile(name=name, sector=sector, industry=industry, extra=extra)


KNOWN_STOCKS: dict[str, Profile] = {
    "AAPL": _p("Apple Inc.", "Technology", "Consumer Electronics"),
    "MSFT": _p("Microsoft Corporation", "Technology", "Software - Infrastructure"),
    "NVDA": _p("NVIDIA Corporation", "Technology", "Semiconductors", market=0.5, momentum=0.4),
    "AMD": _p("Advanced Micro Devices", "Technology", "Semiconductors", market=0.4),
    "AVGO": _p("Broadcom Inc.", "Technology", "Semiconductors"),
    "INTC": _p("Intel Corporation", "Technology", "Semiconductors", growth=-0.5, value=0.6),
    "CRM": _p("Salesforce, Inc.", "Technology", "Software - Application"),
    "ADBE": _p("Adobe Inc.", "Technology", "Software - Application"),
    "ORCL": _p("Oracle Corporation", "Technology", "Software - Infrastructure"),
    "CSCO": _p("Cisco Systems", "Technology", "Communication Equipment", growth=-0.3),
    "SHOP": _p("Shopify Inc.", "Technology", "Software - Application", market=0.5),
    "SNOW": _p("Snowflake Inc.", "Technology", "Software - Application", market=0.5),
    "PLTR": _p("Palantir Technologies", "Technology", "Software - Infrastructure", market=0.6),
    "GOOGL": _p("Alphabet Inc.", "Communication Services", "Internet Content & Information"),
    "META": _p("Meta Platforms", "Communication Services", "Internet Content & Information"),
    "NFLX": _p("Netflix, Inc.", "Communication Services", "Entertainment"),
    "DIS": _p("The Walt Disney Company", "Communication Services", "Entertainment"),
    "T": _p("AT&T Inc.", "Communication Services", "Telecom Services", low_vol=0.4),
    "VZ": _p("Verizon Communications", "Communication Services", "Telecom Services", low_vol=0.5),
    "AMZN": _p("Amazon.com, Inc.", "Consumer Cyclical", "Internet Retail", growth=0.4),
    "TSLA": _p("Tesla, Inc.", "Consumer Cyclical", "Auto Manufacturers", market=0.8),
    "HD": _p("The Home Depot", "Consumer Cyclical", "Home Improvement Retail"),
    "MCD": _p("McDonald's Corporation", "Consumer Cyclical", "Restaurants", low_vol=0.4),
    "NKE": _p("NIKE, Inc.", "Consumer Cyclical", "Footwear & Accessories"),
    "UBER": _p("Uber Technologies", "Technology", "Software - Application", travel=0.2),
    "BKNG": _p("Booking Holdings", "Consumer Cyclical", "Travel Services", travel=0.5),
    "CCL": _p("Carnival Corporation", "Consumer Cyclical", "Travel Services", travel=0.8),
    "WMT": _p("Walmart Inc.", "Consumer Defensive", "Discount Stores"),
    "COST": _p("Costco Wholesale", "Consumer Defensive", "Discount Stores"),
    "PG": _p("Procter & Gamble", "Consumer Defensive", "Household & Personal Products"),
    "KO": _p("The Coca-Cola Company", "Consumer Defensive", "Beverages - Non-Alcoholic"),
    "PEP": _p("PepsiCo, Inc.", "Consumer Defensive", "Beverages - Non-Alcoholic"),
    "JPM": _p("JPMorgan Chase & Co.", "Financial Services", "Banks - Diversified"),
    "BAC": _p("Bank of America", "Financial Services", "Banks - Diversified"),
    "WFC": _p("Wells Fargo & Company", "Financial Services", "Banks - Diversified"),
    "C": _p("Citigroup Inc.", "Financial Services", "Banks - Diversified"),
    "GS": _p("The Goldman Sachs Group", "Financial Services", "Capital Markets"),
    "MS": _p("Morgan Stanley", "Financial Services", "Capital Markets"),
    "BRK.B": _p("Berkshire Hathaway", "Financial Services", "Insurance - Diversified"),
    "V": _p("Visa Inc.", "Financial Services", "Credit Services", growth=0.3),
    "MA": _p("Mastercard Incorporated", "Financial Services", "Credit Services", growth=0.3),
    "PYPL": _p("PayPal Holdings", "Financial Services", "Credit Services", growth=0.3),
    "XOM": _p("Exxon Mobil Corporation", "Energy", "Oil & Gas Integrated"),
    "CVX": _p("Chevron Corporation", "Energy", "Oil & Gas Integrated"),
    "COP": _p("ConocoPhillips", "Energy", "Oil & Gas E&P", oil=0.2),
    "SLB": _p("Schlumberger Limited", "Energy", "Oil & Gas Equipment & Services"),
    "CAT": _p("Caterpillar Inc.", "Industrials", "Farm & Heavy Construction Machinery"),
    "DE": _p("Deere & Company", "Industrials", "Farm & Heavy Construction Machinery"),
    "HON": _p("Honeywell International", "Industrials", "Conglomerates"),
    "GE": _p("General Electric", "Industrials", "Aerospace & Defense"),
    "BA": _p("The Boeing Company", "Industrials", "Aerospace & Defense", travel=0.3),
    "UNP": _p("Union Pacific", "Industrials", "Railroads"),
    "DAL": _p("Delta Air Lines", "Industrials", "Airlines", travel=0.9, oil=-0.25),
    "UAL": _p("United Airlines Holdings", "Industrials", "Airlines", travel=1.0, oil=-0.3),
    "JNJ": _p("Johnson & Johnson", "Healthcare", "Drug Manufacturers - General"),
    "PFE": _p("Pfizer Inc.", "Healthcare", "Drug Manufacturers - General", value=0.3),
    "MRK": _p("Merck & Co.", "Healthcare", "Drug Manufacturers - General"),
    "ABBV": _p("AbbVie Inc.", "Healthcare", "Drug Manufacturers - General"),
    "LLY": _p("Eli Lilly and Company", "Healthcare", "Drug Manufacturers - General", growth=0.4),
    "UNH": _p("UnitedHealth Group", "Healthcare", "Healthcare Plans"),
    "NEE": _p("NextEra Energy", "Utilities", "Utilities - Regulated Electric"),
    "DUK": _p("Duke Energy", "Utilities", "Utilities - Regulated Electric"),
    "LIN": _p("Linde plc", "Basic Materials", "Specialty Chemicals"),
    "NEM": _p("Newmont Corporation", "Basic Materials", "Gold", gold=0.8, market=-0.5),
    "FCX": _p("Freeport-McMoRan", "Basic Materials", "Copper", em=0.3),
    "AMT": _p("American Tower", "Real Estate", "REIT - Specialty"),
    "PLD": _p("Prologis, Inc.", "Real Estate", "REIT - Industrial"),
}

# Dividend yields (continuous, annual, decimal), constant per name: roughly each name's recent
# yield. Known names missing here pay none (growth names, Berkshire, commodity and VIX funds);
# index roots carry their index's yield for index options.
DIVIDEND_YIELDS: dict[str, float] = {
    # Stocks
    "AAPL": 0.005,
    "MSFT": 0.007,
    "AVGO": 0.013,
    "INTC": 0.015,
    "CRM": 0.006,
    "ORCL": 0.012,
    "CSCO": 0.030,
    "GOOGL": 0.005,
    "META": 0.004,
    "DIS": 0.008,
    "T": 0.050,
    "VZ": 0.062,
    "HD": 0.024,
    "MCD": 0.023,
    "NKE": 0.020,
    "WMT": 0.012,
    "COST": 0.005,
    "PG": 0.024,
    "KO": 0.029,
    "PEP": 0.033,
    "JPM": 0.022,
    "BAC": 0.024,
    "WFC": 0.024,
    "C": 0.033,
    "GS": 0.021,
    "MS": 0.032,
    "V": 0.008,
    "MA": 0.006,
    "XOM": 0.034,
    "CVX": 0.041,
    "COP": 0.030,
    "SLB": 0.026,
    "CAT": 0.015,
    "DE": 0.015,
    "HON": 0.021,
    "GE": 0.006,
    "UNP": 0.022,
    "DAL": 0.010,
    "JNJ": 0.031,
    "PFE": 0.058,
    "MRK": 0.030,
    "ABBV": 0.035,
    "LLY": 0.007,
    "UNH": 0.015,
    "NEE": 0.028,
    "DUK": 0.037,
    "LIN": 0.012,
    "NEM": 0.025,
    "FCX": 0.014,
    "AMT": 0.032,
    "PLD": 0.033,
    # ETFs
    "SPY": 0.013,
    "VTV": 0.023,
    "VUG": 0.005,
    "MTUM": 0.008,
    "QUAL": 0.012,
    "SIZE": 0.015,
    "USMV": 0.016,
    "EWG": 0.025,
    "EEM": 0.022,
    "FXI": 0.025,
    "HYG": 0.056,
    "XLK": 0.007,
    "QQQ": 0.006,
    "IWM": 0.012,
    "DIA": 0.017,
    "TLT": 0.037,
    "XLF": 0.015,
    "XLE": 0.033,
    "XLU": 0.030,
    # Indices (option roots and index tickers)
    "SPX": 0.013,
    "SPXW": 0.013,
    "XSP": 0.013,
    "^GSPC": 0.013,
    "NDX": 0.006,
    "RUT": 0.012,
    "DJX": 0.017,
}
# Names the synthetic market invents (any other ticker): their sector's typical yield, jittered.
SECTOR_DIVIDEND_YIELDS: dict[str, float] = {
    "Technology": 0.006,
    "Communication Services": 0.010,
    "Consumer Cyclical": 0.010,
    "Consumer Defensive": 0.027,
    "Financial Services": 0.025,
    "Energy": 0.035,
    "Industrials": 0.017,
    "Healthcare": 0.020,
    "Utilities": 0.033,
    "Basic Materials": 0.020,
    "Real Estate": 0.036,
}
