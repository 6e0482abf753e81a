import pytest

from lmech.errors import UnknownNameError
from lmech.laws import PILLARS, get_law, list_laws


def test_every_law_is_complete():
    laws = list_laws()
    assert "edge-of-stability" in [law.name for law in laws]
    for law in laws:
        assert law.pillar in PILLARS and law.references and law.statement and law.title
        assert {"quick", "full"} <= set(law.presets)
        law.config("quick"), law.config("full"), law.config()  # every preset validates


def test_unknown_law_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="did you mean 'edge-of-stability'"):
        get_law("edge-of-stabilty")


def test_unknown_pillar():
    with pytest.raises(UnknownNameError, match="no pillar named"):
        list_laws("vibes")
