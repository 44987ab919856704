"""Phone numbers for SMS (domain/phones.py): E.164, mobile or not, overseas territory."""
import pytest

from portal.domain.phones import InvalidPhone, display, is_mobile, overseas, territories, to_e164


@pytest.mark.parametrize("raw", ["06 12 34 56 78", "0612345678", "06.12.34.56.78", "+33 6 12 34 56 78",
                                 "0033 6 12 34 56 78", "+33 (0)6 12 34 56 78"])
def test_french_ways_of_writing_a_mobile_all_give_e164(raw):
    assert to_e164(raw) == "+33612345678"


def test_another_default_region_reads_national_numbers_there():
    assert to_e164("020 7946 0958", "GB") == "+442079460958"
    assert to_e164("+44 20 7946 0958") == "+442079460958"


def test_overseas_numbers_dialled_from_france_are_found_in_their_territory():
    assert to_e164("0690 12 34 56") == "+590690123456"   # Guadeloupe
    assert to_e164("0696 20 12 34") == "+596696201234"   # Martinique
    assert to_e164("0694 20 12 34") == "+594694201234"   # Guyane
    assert to_e164("0692 12 34 56") == "+262692123456"   # La Réunion
    assert to_e164("0639 01 23 45") == "+262639012345"   # Mayotte


@pytest.mark.parametrize("raw,reason", [("", "empty"), ("abc", "not_a_number"), ("06 12", "too_short"),
                                        ("06 12 34 56 78 90 12", "too_long"), ("07 00 00 00 00", "invalid"),
                                        ("+999 1234 5678", "country_code")])
def test_what_is_not_a_number_says_why(raw, reason):
    with pytest.raises(InvalidPhone) as e:
        to_e164(raw)
    assert e.value.reason == reason and str(e.value)


def test_mobiles_and_landlines():
    assert is_mobile("+33612345678") and is_mobile("+33756123456")
    assert not is_mobile("+33145678901")                         # Paris landline
    assert is_mobile("+262692123456") and not is_mobile("+262262123456")
    assert is_mobile("+14155552671")                             # the US plan does not tell: may be one


def test_display_is_national_in_france():
    assert display("+33612345678") == "06 12 34 56 78"
    assert display("+262692123456") == "+262 692 12 34 56"


@pytest.mark.parametrize("number,region,zone,subdivision", [
    ("+590690001234", "GP", "America/Guadeloupe", "971"),
    ("+596696201234", "MQ", "America/Martinique", "972"),
    ("+594694201234", "GF", "America/Cayenne", "973"),
    ("+262692123456", "RE", "Indian/Reunion", "974"),
    ("+262639012345", "YT", "Indian/Mayotte", "976"),
    ("+508551234", "PM", "America/Miquelon", "PM"),
    ("+68987123456", "PF", "Pacific/Tahiti", "PF"),
    ("+687751234", "NC", "Pacific/Noumea", "NC"),
    ("+681821234", "WF", "Pacific/Wallis", "WF"),
])
def test_overseas_territory_zone_and_holidays(number, region, zone, subdivision):
    t = overseas(number)
    assert (t.region, t.time_zone, t.subdivision) == (region, zone, subdivision)


def test_saint_barthelemy_and_saint_martin_share_guadeloupes_numbers():
    assert [t.region for t in territories("+590690001234")] == ["GP", "BL", "MF"]
    assert {t.region for t in territories("+590590271234")} == {"BL", "MF"}


def test_mainland_and_foreign_numbers_are_not_overseas():
    assert overseas("+33612345678") is None and overseas("+447400123456") is None
