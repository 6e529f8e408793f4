"""The fixed parts of the demo world: teams, regions, time zones, stages, products, names.

Kept apart from the simulation so the generative story can be read in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

STAGES = ("qualification", "discovery", "demo", "proposal", "negotiation")
"""Open stages in order; a deal leaves the last one as ``closed_won``."""
CLOSED_WON, CLOSED_LOST = "closed_won", "closed_lost"
STAGE_NAMES = (*STAGES, CLOSED_WON, CLOSED_LOST)
STAGE_DWELL_DAYS = np.array([8.0, 12.0, 14.0, 12.0, 10.0])
"""Mean days in each open stage for a team with cycle factor 1 (healthy, average pace)."""
STAGE_ALPHA = np.array([1.2, 1.5, 1.7, 1.9, 2.2])
"""Log-odds of leaving each stage forwards rather than lost (before quality, skill, ...)."""

TIMEZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
)
TZ_INDEX = {tz: i for i, tz in enumerate(TIMEZONES)}

PRODUCT_LINES = ("custom_solution", "platform", "analytics", "services")
PRODUCT_AMOUNT_FACTOR = np.array([1.6, 1.0, 0.5, 0.35])
RECURRING_SHARE = np.array([0.5, 1.0, 1.0, 0.0])
"""Probability that winning a deal of each product line starts a subscription."""
RECURRING_VALUE_FACTOR = np.array([0.2, 1.0, 1.0, 0.0])
"""Monthly value = amount x factor / 12 (custom solutions: a support contract)."""

LEAD_SOURCES = ("referral", "inbound_web", "outbound", "event", "partner")
LEAD_SOURCE_QUALITY = np.array([0.0, 0.2, -0.45, 0.0, 0.25])
"""Latent quality offset per source; referral's offset is the knob strong_source_boost."""
LEAD_SOURCE_WEIGHTS_REST = np.array([0.0, 0.34, 0.30, 0.22, 0.14])

INDUSTRIES = (
    "software",
    "manufacturing",
    "retail",
    "financial_services",
    "healthcare",
    "logistics",
    "education",
    "media",
)


@dataclass(frozen=True)
class Team:
    name: str
    region: str
    rep_tz: str
    products: tuple[float, float, float, float]  # mix over PRODUCT_LINES
    median_amount: float
    cycle: float  # multiplies stage dwell times
    offset: float  # log-odds offset of advancing stages
    employees: float  # median account size
    contact_tz: tuple[tuple[str, float], ...]


TEAMS: tuple[Team, ...] = (
    Team(
        "NA Enterprise",
        "North America",
        "America/New_York",
        (0.65, 0.25, 0.0, 0.10),
        90_000.0,
        2.2,
        -0.15,
        4000.0,
        (("America/New_York", 0.5), ("America/Chicago", 0.25), ("America/Los_Angeles", 0.25)),
    ),
    Team(
        "NA Mid-Market",
        "North America",
        "America/Los_Angeles",
        (0.0, 0.6, 0.3, 0.1),
        24_000.0,
        1.0,
        0.0,
        400.0,
        (("America/Los_Angeles", 0.5), ("America/Chicago", 0.2), ("America/New_York", 0.3)),
    ),
    Team(
        "EMEA North",
        "EMEA",
        "Europe/London",
        (0.1, 0.5, 0.25, 0.15),
        28_000.0,
        1.3,
        -0.05,
        600.0,
        (("Europe/London", 0.6), ("Europe/Berlin", 0.2), ("Europe/Paris", 0.2)),
    ),
    Team(
        "EMEA Central",
        "EMEA",
        "Europe/Berlin",
        (0.05, 0.55, 0.25, 0.15),
        26_000.0,
        1.2,
        0.0,
        500.0,
        (("Europe/Berlin", 0.6), ("Europe/Paris", 0.2), ("Europe/London", 0.2)),
    ),
    Team(
        "APAC Velocity",
        "APAC",
        "Asia/Singapore",
        (0.0, 0.85, 0.15, 0.0),
        7_000.0,
        0.55,
        0.15,
        60.0,
        (("Asia/Singapore", 0.6), ("Asia/Tokyo", 0.2), ("Australia/Sydney", 0.2)),
    ),
)

FIRST_NAMES = [
    "Alex",
    "Maria",
    "Jonas",
    "Priya",
    "Wei",
    "Sofia",
    "Liam",
    "Emma",
    "Noah",
    "Mia",
    "Lukas",
    "Hannah",
    "Ken",
    "Aiko",
    "Omar",
    "Lea",
    "Raj",
    "Chloe",
    "Mateo",
    "Nina",
    "Oliver",
    "Grace",
    "Felix",
    "Yuki",
    "Daniel",
    "Sara",
    "Tom",
    "Anna",
    "Ben",
    "Julia",
]
LAST_NAMES = [
    "Smith",
    "Mueller",
    "Tan",
    "Garcia",
    "Chen",
    "Rossi",
    "Novak",
    "Kim",
    "Brown",
    "Schmidt",
    "Lee",
    "Dubois",
    "Patel",
    "Weber",
    "Sato",
    "Jones",
    "Fischer",
    "Wong",
    "Martin",
    "Silva",
    "Taylor",
    "Becker",
    "Nguyen",
    "Moreau",
    "Walker",
    "Koch",
    "Lim",
    "Bauer",
    "Young",
    "Clark",
]
ACCOUNT_WORDS = [
    "Apex",
    "Blue",
    "Cedar",
    "Delta",
    "Echo",
    "Fjord",
    "Granite",
    "Harbor",
    "Iris",
    "Juniper",
    "Krypton",
    "Lumen",
    "Maple",
    "Nova",
    "Onyx",
    "Pioneer",
    "Quartz",
    "River",
    "Summit",
    "Tidal",
    "Umber",
    "Vertex",
    "Willow",
    "Xenon",
    "Yarrow",
    "Zenith",
    "Atlas",
    "Beacon",
    "Comet",
    "Dune",
]
ACCOUNT_SUFFIXES = (
    "Labs",
    "Group",
    "Systems",
    "Industries",
    "Holdings",
    "Partners",
    "Works",
    "GmbH",
)


def tz_offset_table(start: pd.Timestamp, end: pd.Timestamp) -> tuple[list, list]:
    """Per time zone, the UTC instants (epoch seconds) where its offset changes and the offsets.

    Offsets only change on the hour, so an hourly scan is exact; lookups are then one
    ``searchsorted`` per batch, which keeps local hours DST-correct without per-row tz calls.
    """
    hours = pd.date_range(
        start - pd.Timedelta(days=3), end + pd.Timedelta(days=8), freq="h", tz="UTC"
    )
    unit = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[hours.unit]
    utc = hours.tz_localize(None).asi8
    epoch = utc // unit
    changes, offsets = [], []
    for tz in TIMEZONES:
        wall = hours.tz_convert(tz).tz_localize(None).asi8
        off_all = (wall - utc) // unit
        keep = np.r_[True, off_all[1:] != off_all[:-1]]
        changes.append(epoch[keep].astype(np.int64))
        offsets.append(off_all[keep].astype(np.int64))
    return changes, offsets
