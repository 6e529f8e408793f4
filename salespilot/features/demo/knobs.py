"""One knob per planted effect of the demo generator, with documented defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoKnobs:
    """Strength of every effect the demo generator plants (0 switches most of them off).

    Defaults give a realistic B2B team: ~10 new deals per rep and month, ~30 % win rate,
    a strong referral source, long enterprise cycles in North America, summer dip,
    quarter-end pushes, stalls, leavers with (sometimes missing) hand-overs, churn that
    follows fading engagement.
    """

    # volume
    deals_per_rep_month: float = 10.0
    """New opportunities per fully ramped rep and month (before seasonality)."""
    existing_account_share: float = 0.3
    """Share of new deals opened on an account the rep already owns (expansion, repeat)."""
    initial_customers_per_rep: int = 12
    """Accounts with a running subscription each rep owns when the history starts."""
    activity_rate: float = 0.8
    """Outbound touches per open deal and working day at average quality."""

    # teams and regions
    region_contrast: float = 1.0
    """Scales how different teams are: enterprise deal size and cycle length vs velocity."""

    # reps
    skill_sd: float = 0.5
    """Spread of rep skill (log-odds of advancing a stage)."""
    ramp_months: float = 4.0
    """Months a new hire takes to reach full deal volume and qualification quality."""
    leaver_rate_per_year: float = 0.15
    """Yearly probability that a rep leaves (replaced ~1 month later)."""
    bad_handover_share: float = 0.5
    """Share of leavers whose accounts and deals are handed over without a hand-over touch."""
    handover_penalty: float = 1.0
    """Log-odds penalty on every later stage of a deal handed over badly; churn shock too."""

    # leads
    strong_source_share: float = 0.18
    """Share of leads from the strong source (``referral``)."""
    strong_source_boost: float = 1.3
    """Latent quality advantage of the strong source (in sd units)."""

    # deals
    industry_fit_sd: float = 0.25
    """Spread of how well each industry fits each team's offer (an observable part of quality)."""
    customer_boost: float = 0.3
    """Quality advantage of deals on accounts that are already paying customers."""
    quality_effect: float = 1.0
    """How much a deal's latent quality drives stage advancement (log-odds per sd)."""
    dm_effect: float = 0.6
    """Log-odds bonus per stage when a decision maker is engaged (minus when not)."""
    stall_rate: float = 0.35
    """Hazard of stalling relative to the stage's exit hazard (more for weak deals)."""

    # seasonality
    seasonality: float = 1.0
    """Strength of the summer/December dip in leads, activity and stage speed."""
    quarter_end_push: float = 0.8
    """Extra speed of late-stage decisions in the last two weeks of a quarter."""

    # contacts
    personal_hour_sd: float = 0.7
    """Hours a contact's peak answer hour deviates from the typical one of their role."""
    hour_pattern_strength: float = 1.0
    """How peaked each contact's personal hour-of-week answer pattern is."""
    engagement_effect: float = 0.3
    """How much deal quality / account health changes connect and reply odds."""

    # churn
    weekly_churn_base: float = 0.0035
    """Weekly churn probability of an average customer."""
    churn_health_effect: float = 0.9
    """Log-odds of churn per sd of fading account health (engagement)."""
