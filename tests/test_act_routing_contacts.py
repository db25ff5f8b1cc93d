"""Abuse contacts and routing rules as data: validation with clear messages, normalisation, the
default rules on first use, and every change in the audit log (#10 part "routing")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meldpunt.act import contacts
from meldpunt.act.contacts import ContactError
from meldpunt.bootstrap import Services
from tests.helpers.routing import audit, make_services


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    s = make_services(db_url, home_country="BE")
    yield s
    s.close()


def _problems(values: dict[str, str]) -> list[str]:
    with pytest.raises(ContactError) as e:
        contacts.contact_data(values)
    return [p.code for p in e.value.problems]


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"scope": "domain", "match": "example.com", "address": "not-an-address"}, "contact_email"),
        ({"scope": "domain", "match": "example.com", "address": "abuse@"}, "contact_email"),
        ({"scope": "domain", "match": "example.com", "address": "abuse@host.invalid"}, "contact_email"),
        ({"scope": "domain", "match": "example.com", "address": "abuse@localhost"}, "contact_email"),
        (
            {"scope": "domain", "match": "example.com", "channel": "webhook", "address": "ftp://x.example/"},
            "contact_webhook",
        ),
        (
            {
                "scope": "domain",
                "match": "example.com",
                "channel": "webhook",
                "address": "https://u:p@x.example/",
            },
            "contact_webhook",
        ),
        ({"scope": "domain", "match": "example.com", "channel": "fax", "address": "1"}, "contact_channel"),
        ({"scope": "network", "match": "192.0.2.0/33", "address": "a@b.example"}, "contact_match"),
        ({"scope": "network", "match": "example.com", "address": "a@b.example"}, "contact_match"),
        ({"scope": "asn", "match": "AS-twelve", "address": "a@b.example"}, "contact_match"),
        ({"scope": "asn", "match": "4294967296", "address": "a@b.example"}, "contact_match"),
        ({"scope": "domain", "match": "https://example.com/", "address": "a@b.example"}, "contact_match"),
        ({"scope": "domain", "match": "exa mple.com", "address": "a@b.example"}, "contact_match"),
        ({"scope": "domain", "match": "-bad-.example", "address": "a@b.example"}, "contact_match"),
        ({"scope": "planet", "match": "mars", "address": "a@b.example"}, "contact_scope"),
        ({"scope": "provider", "match": "", "address": "a@b.example"}, "contact_match"),
        (
            {"scope": "provider", "match": "x", "address": "a@b.example", "language": "Dutch!"},
            "contact_language",
        ),
    ],
)
def test_invalid_contacts_are_refused_with_the_reason(values: dict[str, str], code: str) -> None:
    assert code in _problems(values)


def test_every_problem_is_said_at_once() -> None:
    codes = _problems({"scope": "asn", "match": "x", "address": "nope", "language": "???"})
    assert codes == ["contact_match", "contact_email", "contact_language"]
    with pytest.raises(ContactError) as e:
        contacts.contact_data({"scope": "asn", "match": "x", "address": "a@b.example"})
    assert str(e.value) == "x is not an AS number (like AS64496)"


def test_contacts_are_normalised() -> None:
    d = contacts.contact_data(
        {"scope": "domain", "match": "*.Bücher.Example.", "address": "Abuse@Bücher.Example"}
    )
    assert d.match == "xn--bcher-kva.example"
    assert d.address.endswith("@bücher.example")
    assert (
        contacts.contact_data({"scope": "asn", "match": "as64496", "address": "a@b.example"}).match == "64496"
    )
    net = contacts.contact_data({"scope": "network", "match": "192.0.2.77/24", "address": "a@b.example"})
    assert net.match == "192.0.2.0/24"
    v6 = contacts.contact_data({"scope": "network", "match": "2001:DB8::/32", "address": "a@b.example"})
    assert v6.match == "2001:db8::/32"
    p = contacts.contact_data(
        {"scope": "provider", "match": "  Big   Host ", "channel": "none", "address": "ignored"}
    )
    assert (p.match, p.address, p.accepts, p.do_not_contact) == ("big host", "", True, False)
    hook = contacts.contact_data(
        {
            "scope": "provider",
            "match": "api host",
            "channel": "webhook",
            "address": "https://api.example/abuse",
            "cdn": "on",
        }
    )
    assert hook.cdn is True and hook.address == "https://api.example/abuse"


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"country": "Belgium", "action": "notice"}, "rule_country"),
        ({"country": "B1", "action": "notice"}, "rule_country"),
        ({"country": "NL", "action": "forward"}, "rule_partner"),
        ({"country": "NL", "action": "notice", "partner": "Offlimits"}, "rule_partner"),
        ({"country": "NL", "action": "shout"}, "rule_action"),
        ({"country": "NL", "action": "notice", "position": "first"}, "rule_position"),
        ({"country": "NL", "action": "notice", "police_categories": "A1, <b>"}, "rule_categories"),
    ],
)
def test_invalid_rules_are_refused(values: dict[str, str], code: str) -> None:
    with pytest.raises(ContactError) as e:
        contacts.rule_data(values)
    assert code in [p.code for p in e.value.problems]


def test_rules_are_seeded_once_on_first_use(services: Services) -> None:
    rules = contacts.list_rules(services)
    assert [(r.country, r.action, r.police) for r in rules] == [
        ("BE", "notice", True),
        ("*", "notice", False),
    ]
    assert contacts.list_rules(services) == rules
    assert [a for _, a, _, _ in audit(services)] == ["rule.defaults"]


def test_every_change_is_audited_in_its_transaction(services: Services) -> None:
    c = contacts.add_contact(
        services,
        {"scope": "domain", "match": "Example.COM", "name": "Example", "address": "abuse@example.com"},
        "sara",
    )
    assert c.match == "example.com" and c.updated_by == "sara"
    with pytest.raises(ContactError) as e:
        contacts.add_contact(
            services, {"scope": "domain", "match": "example.com", "address": "x@example.com"}, "sara"
        )
    assert e.value.problems[0].code == "contact_duplicate"
    edited = contacts.edit_contact(
        services,
        c.id,
        {
            "scope": "domain",
            "match": "example.com",
            "name": "Example",
            "address": "abuse@example.com",
            "do_not_contact": "1",
        },
        "tom",
    )
    assert edited.do_not_contact and edited.updated_by == "tom"
    with pytest.raises(ContactError):  # refused: nothing changes, nothing audited
        contacts.edit_contact(
            services, c.id, {"scope": "domain", "match": "example.com", "address": "bad"}, "tom"
        )
    contacts.delete_contact(services, c.id, "tom")
    with pytest.raises(contacts.NotFound):
        contacts.delete_contact(services, c.id, "tom")
    r = contacts.add_rule(services, {"country": "nl", "action": "forward", "partner": "Offlimits"}, "sara")
    assert r.country == "NL"
    contacts.edit_rule(services, r.id, {"country": "NL", "action": "none"}, "sara")
    contacts.delete_rule(services, r.id, "sara")
    log = audit(services)
    assert [(actor, action, subject) for actor, action, subject, _ in log] == [
        ("sara", "contact.add", f"contact:{c.id}"),
        ("tom", "contact.edit", f"contact:{c.id}"),
        ("tom", "contact.delete", f"contact:{c.id}"),
        ("system", "rule.defaults", ""),
        ("sara", "rule.add", f"rule:{r.id}"),
        ("sara", "rule.edit", f"rule:{r.id}"),
        ("sara", "rule.delete", f"rule:{r.id}"),
    ]
    assert log[1][3]["changed"] == {"do_not_contact": [False, True]}
    assert log[5][3]["changed"] == {"action": ["forward", "none"], "partner": ["Offlimits", ""]}
    assert log[2][3]["address"] == "abuse@example.com"


def test_contacts_are_listed_and_searched(services: Services) -> None:
    for n in range(3):
        contacts.add_contact(
            services,
            {"scope": "asn", "match": f"6450{n}", "name": f"Net {n}", "address": f"a{n}@net.example"},
            "sara",
        )
    contacts.add_contact(
        services,
        {"scope": "domain", "match": "host_1.example", "address": "x@host.example", "note": "50% slower"},
        "sara",
    )
    found, total = contacts.list_contacts(services)
    assert total == 4 and [c.scope for c in found] == ["asn", "asn", "asn", "domain"]
    assert [c.match for c in contacts.list_contacts(services, search="NET 1")[0]] == ["64501"]
    assert [c.match for c in contacts.list_contacts(services, search="_")[0]] == ["host_1.example"]
    assert [c.match for c in contacts.list_contacts(services, search="50%")[0]] == ["host_1.example"]
    assert contacts.list_contacts(services, scope="domain")[1] == 1
    page, total = contacts.list_contacts(services, limit=2, offset=2)
    assert total == 4 and len(page) == 2
