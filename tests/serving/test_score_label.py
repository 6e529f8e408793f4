"""The deal score is "won within N days" wherever it is shown: the API field and the pages."""

from __future__ import annotations

from salespilot.models import SPECS


def test_deal_score_is_labelled_with_the_models_horizon():
    from salespilot.serving.schemas import PriorityItem
    from salespilot.serving.web.pages import templates

    days = SPECS["win_probability"].horizon_days
    described = PriorityItem.model_json_schema()["properties"]["score"]["description"]
    assert f"won within {days} days" in described
    assert templates.env.globals["win_label"] == f"won within {days} days"
    for page in ("rep.html", "item.html"):
        source = templates.env.loader.get_source(templates.env, page)[0]
        assert "win_label" in source and "Win probability" not in source
