"""The entities room (#13 link analysis): each kind found and normalised, checksums that hold and
ones that do not, text in many scripts and encodings, and hostile text that costs little."""

from __future__ import annotations

import time

import pytest

from meldpunt.entities import Entity, extract, extract_page
from meldpunt.entities.crypto import base58check, crypto_address, ethereum, monero, segwit

XMR = "4AdUndXHHZ6cfufTMvppY6JwXNouMBzSkbLYfpAV5Usx3skxNgYeYTRj5UzqtReoS44qo9mtmXCqY45DJ852K5Jv2684Rge"


def _values(text: str, kind: str, region: str | None = "BE") -> list[str]:
    return [e.value for e in extract(text, region=region) if e.kind == kind]


# --- cryptocurrency addresses: checksums ------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "btc:1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"),  # P2PKH
        ("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "btc:3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"),  # P2SH
        ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3", None),  # last character changed: checksum fails
        ("LaMT348PWRnrqeeWArpwQPbuanpXDZGEUz", "ltc:LaMT348PWRnrqeeWArpwQPbuanpXDZGEUz"),
        ("LaMT348PWRnrqeeWArpwQPbuanpXDZGEUZ", None),
        # BIP-173 (Bech32, witness v0) and BIP-350 (Bech32m, v1) vectors
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "btc:bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
        ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "btc:bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", None),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kV8f3t4", None),  # mixed case
        (
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
            "btc:bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        ),
        # v1 with a Bech32 (not Bech32m) checksum: BIP-350 says invalid
        ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", None),
        # EIP-55: the specification's example, then one letter's case flipped; one case: no checksum
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "eth:0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
        ("0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed", None),
        ("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "eth:0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
        ("0x0000000000000000000000000000000000000000", None),
        (XMR, f"xmr:{XMR}"),
        (XMR[:-1] + "f", None),
    ],
)
def test_crypto_checksums(address: str, expected: str | None) -> None:
    assert crypto_address(address) == expected
    assert _values(f"send to {address} please", "crypto") == ([expected] if expected else [])


def test_crypto_validators_refuse_noise() -> None:
    assert base58check("1" * 34) is None and base58check("0OIl" * 8) is None
    assert segwit("bc1") is None and segwit("tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx") is None
    assert ethereum("0x" + "g" * 40) is None and monero("4" * 95) is None
    assert _values("bitcoin:1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2?amount=0.1", "crypto") == [
        "btc:1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
    ]


# --- the other kinds ------------------------------------------------------------------------


def test_ibans_validated_and_compact() -> None:
    text = "IBAN NL91 ABNA 0417 1643 00, DE89370400440532013000; fout: NL92 ABNA 0417 1643 00, XX12 3456"
    assert _values(text, "iban") == ["DE89370400440532013000", "NL91ABNA0417164300"]


def test_phone_numbers_in_e164_with_the_hotlines_region() -> None:
    text = "bel +32 470 12 34 56 of 0470/12.34.56, of +31 6 12345678; niet 12345 of +32 12"
    assert _values(text, "phone") == ["+31612345678", "+32470123456"]
    assert _values("0470 12 34 56", "phone", region=None) == []  # no region: no national numbers
    assert _values("wa.me/32470123456", "phone") == ["+32470123456"]


def test_handles_per_platform() -> None:
    text = (
        "t.me/Some_Name https://telegram.me/other_one t.me/joinchat/AbCdEf12 t.me/+XyZ123abc "
        "instagram.com/some.user/ https://www.instagram.com/p/Cabc123 twitter.com/Someone x.com/i/flow "
        "tiktok.com/@tik.tok discord.gg/AbC123 https://discord.com/invite/Q9w8 snapchat.com/add/snappy "
        "telegram: @TgUser · insta @InstaUser · no platform @nobody"
    )
    assert _values(text, "handle") == [
        "discord:invite/AbC123",
        "discord:invite/Q9w8",
        "instagram:instauser",
        "instagram:some.user",
        "snapchat:snappy",
        "telegram:+AbCdEf12",
        "telegram:+XyZ123abc",
        "telegram:other_one",
        "telegram:some_name",
        "telegram:tguser",
        "tiktok:tik.tok",
        "x:someone",
    ]
    # a platform's own domain is never an entity: it would join every report that links there
    assert _values(text, "domain") == [] and _values(text, "url") == []


def test_payment_handles() -> None:
    text = "paypal.me/JohnDoe https://www.paypal.com/paypalme/Jane cash.app/$Cashy $Other venmo.com/u/Ven $5"
    assert _values(text, "payment") == [
        "cashapp:cashy",
        "cashapp:other",
        "paypal:jane",
        "paypal:johndoe",
        "venmo:ven",
    ]


def test_emails_domains_urls_normalised() -> None:
    text = (
        "Mail Foo.Bar@Example.COM or mailto:x@пример.рф; see https://www.Example.org:443/Path?x=1#frag, "
        "HTTP://shop.example.net, evil-site.ru and index.html, photo.jpg, 1.2.3.4"
    )
    found = extract(text)
    assert Entity("email", "foo.bar@example.com") in found
    assert Entity("email", "x@xn--e1afmkfd.xn--p1ai") in found
    assert Entity("url", "https://example.org/Path?x=1") in found
    assert [e.value for e in found if e.kind == "domain"] == [
        "evil-site.ru",
        "example.org",
        "shop.example.net",
    ]


# --- scripts, encodings, invisible characters ---------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "تواصل معي على t.me/bad_guy او بيتكوين 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",  # Arabic
        "\u200ft.me/bad_guy\u200f ‏1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2‏",  # RTL marks
        "\u202et.me/bad_guy\u202c 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",  # bidi override
        "пиши в телеграм @bad_guy, биткоин: 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",  # Cyrillic
        "请联系ｔ.ｍｅ／ｂａｄ＿ｇｕｙ比特币1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2谢谢",  # CJK, fullwidth
        "ติดต่อt.me/bad_guyบิตคอยน์1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2ครับ",  # Thai, no spaces
        "t.me/bad\u200b_guy 1BvBMSEYst\u200dWetqTFn5Au4m4GFg7xJaNVN2",  # zero-width inside
        "\ufefft.me/bad_guy\u00ad 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",  # BOM, soft hyphen
    ],
)
def test_many_scripts_give_the_same_entities(text: str) -> None:
    found = extract(text)
    assert Entity("handle", "telegram:bad_guy") in found
    assert Entity("crypto", "btc:1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2") in found


def test_fullwidth_digits_and_mojibake() -> None:
    assert _values("電話＋３２ ４７０ １２ ３４ ５６", "phone") == ["+32470123456"]
    mojibake = "Écrivez à chéri@example.fr".encode().decode("cp1252")  # UTF-8 read as Windows-1252
    assert "Ã" in mojibake
    assert _values(mojibake, "email") == ["chéri@example.fr"]
    assert _values("Ã  l'adresse " + "chéri@example.fr".encode().decode("cp1252"), "email") == [
        "chéri@example.fr"
    ]


# --- hostile text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a" * 300_000,
        "@" * 200_000,
        "a@" * 100_000,
        "1" * 200_000,
        "+32 " * 50_000,
        "http://" + "a." * 100_000,
        ("0x" + "a" * 38 + " ") * 5_000,
        "NL91 " * 40_000,
        "x.com/" * 30_000,
        "\u200b" * 100_000 + "t.me/bad_guy",
        "\x00\x01\x02" * 50_000,
        "\ud800 lone surrogate t.me/ok_name",
    ],
)
def test_hostile_text_is_cheap_and_never_raises(text: str) -> None:
    started = time.process_time()
    found = extract(text, region="BE", max_s=2.0)
    spent = time.process_time() - started
    assert isinstance(found, list) and len(found) <= 500
    # a budget, not a timing assertion: the extractor stops itself at max_s (plus one chunk)
    assert spent < 30, spent


def test_entities_capped_and_sorted() -> None:
    text = " ".join(f"user{n}@example.com" for n in range(2000))
    found = extract(text)
    assert len(found) == 500 and {e.kind for e in found} == {"email"}
    assert [e.value for e in found] == sorted(e.value for e in found)


# --- pages ----------------------------------------------------------------------------------


def test_page_text_links_and_metadata() -> None:
    html = """<!doctype html><html><head>
    <meta name="twitter:site" content="@SiteHandle"><meta name="description" content="pay bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4">
    <script>var x = "t.me/in_script";</script><style>.a{}</style></head><body>
    <p>Contact: <a href="mailto:Owner@Example.net?subject=x">mail</a> <a href="tel:+32470123456">call</a></p>
    <a href="/about">about</a> <a href="https://files.example.com/x">same site</a>
    <a href="https://t.me/page_handle">tg</a> <a href="https://other.example.org/shop?id=1">shop</a>
    <p>IBAN NL91 ABNA 0417 1643 00</p></body></html>"""
    found = extract_page(html, "https://www.example.com/gallery", region="BE")
    assert set(found) == {
        Entity("handle", "telegram:page_handle"),
        Entity("handle", "x:sitehandle"),
        Entity("crypto", "btc:bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
        Entity("iban", "NL91ABNA0417164300"),
        Entity("phone", "+32470123456"),
        Entity("email", "owner@example.net"),
        Entity("domain", "other.example.org"),
        Entity("url", "https://other.example.org/shop?id=1"),
    }


def test_hostile_pages() -> None:
    deep = "<div>" * 20_000 + "t.me/deep_one" + "</div>" * 20_000
    assert Entity("handle", "telegram:deep_one") in extract_page(deep, "http://x.example/")
    broken = "<a href='" + "x" * 100_000 + "<p>t.me/after_broken</p><![CDATA[ <!-- "
    assert isinstance(extract_page(broken, "http://x.example/"), list)
    many = "".join(f'<a href="https://site{n}.example.net/">l</a>' for n in range(20_000))
    assert len(extract_page(many, "http://x.example/")) <= 500
