"""What the lab registers in MLflow, and how a version's tags become its behaviour.

The registry against a real MLflow is in test_lab_integration.py.
"""

from __future__ import annotations

from datetime import date

import pytest

from lab.catalog import REGISTERED_VERSIONS
from lab.registry import behaviour_from_tags, version_tags
from lab.simulation import BROKEN, HEALTHY, Behaviour


def test_every_version_is_tagged_like_a_real_training_run() -> None:
    today = date(2026, 11, 23)
    tags = {v: version_tags("fraud-detector", v, today) for v in REGISTERED_VERSIONS}
    for version in ("1", "2", "3"):
        assert tags[version]["lab.error_ratio"] == "0.002"
        assert tags[version]["lab.scores"] == "normal"
        assert tags[version]["features"] == "amount,tenure_days,country_risk"
    assert tags["4"]["lab.error_ratio"] == "0.6"
    assert tags["4"]["lab.scores"] == "collapsed"
    assert tags["4"]["features"] == "amount,tenure_days,country_risk_score"
    # Newer versions: trained later, and better offline (the bad one best of all).
    trained = [tags[v]["trained_on"] for v in REGISTERED_VERSIONS]
    assert trained == sorted(trained) and trained[-1] < today.isoformat()
    aucs = [float(tags[v]["auc"]) for v in REGISTERED_VERSIONS]
    assert aucs == sorted(aucs)
    shas = {t["git_sha"] for t in tags.values()}
    assert len(shas) == 4 and all(len(s) == 12 and int(s, 16) >= 0 for s in shas)
    assert version_tags("recommender", "3", today)["git_sha"] != tags["3"]["git_sha"]


def test_tags_become_behaviours() -> None:
    assert behaviour_from_tags(version_tags("m", "3")) == HEALTHY
    assert behaviour_from_tags(version_tags("m", "4")) == BROKEN
    assert behaviour_from_tags({"lab.error_ratio": "0.25", "lab.scores": "collapsed"}) == Behaviour(
        error_ratio=0.25, scores="collapsed"
    )


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"lab.scores": "normal"}, "lab.error_ratio is missing"),
        ({"lab.error_ratio": "0.1"}, "lab.scores is missing"),
        ({"lab.error_ratio": "lots", "lab.scores": "normal"}, "not a number"),
        ({"lab.error_ratio": "2", "lab.scores": "normal"}, "within"),
        ({"lab.error_ratio": "0.1", "lab.scores": "odd"}, "unknown score distribution"),
    ],
)
def test_bad_tags_are_refused(tags: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        behaviour_from_tags(tags)
