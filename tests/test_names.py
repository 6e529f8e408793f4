"""A mistyped name gets one message: the closest known names first, then all of them."""

from __future__ import annotations

import pytest

from salespilot.features.names import close_names, unknown_name


def test_close_names_ignore_case_spacing_and_dashes():
    teams = ["EMEA North", "EMEA South", "APAC"]
    assert close_names("EMEA Nort", teams)[0] == "EMEA North"
    assert close_names("emea  north", teams)[0] == "EMEA North"
    assert close_names("win-probability", ["win_probability", "churn_risk"]) == ["win_probability"]
    assert close_names("Atlantis", teams) == []


def test_unknown_name_suggests_then_lists():
    msg = unknown_name("model", "win_probabilty", ["win_probability", "churn_risk"])
    assert msg == (
        "unknown model 'win_probabilty'; did you mean 'win_probability'? "
        "(models: churn_risk, win_probability)"
    )
    assert unknown_name("team", "Atlantis", ["APAC"]) == "unknown team 'Atlantis' (teams: APAC)"


def test_specs_and_settings_suggest_the_model_name():
    from salespilot.models import get_spec
    from salespilot.settings import Settings

    with pytest.raises(KeyError, match="did you mean 'churn_risk'"):
        get_spec("churn_rsk")
    with pytest.raises(ValueError, match="did you mean 'churn_risk'"):
        Settings(horizon_days={"churn_rsik": 30})
