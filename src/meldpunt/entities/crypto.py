"""Cryptocurrency addresses with their checksums validated: a string that looks like an address but
fails its checksum is a typo or noise, and a wrong link in the graph is worse than a missing one.

- Bitcoin and Litecoin legacy addresses: Base58Check (the version byte names the coin and kind;
  the last 4 bytes are the first 4 of SHA-256(SHA-256(payload))). Written here: a dozen lines.
- Bitcoin and Litecoin SegWit addresses: Bech32 (witness version 0, BIP-173) and Bech32m (version
  1 and up, BIP-350), with the witness program's length rules of BIP-141. Written here after the
  reference code of BIP-173/BIP-350 (the polymod is the specification).
- Ethereum: 20 bytes as 40 hex digits; an address in mixed case carries the EIP-55 checksum (the
  case of each letter is a bit of Keccak-256 of the lower-case hex), which must hold; an address in
  one case carries none and is taken as it is. Keccak-256 (not SHA3-256: different padding) from
  pycryptodome.
- Monero: standard (prefix 18, "4…") and subaddresses (42, "8…"): 95 characters of Monero's block
  Base58; the last 4 bytes are the first 4 of Keccak-256 of the rest.

Each validator returns the normalised address, or None.
"""

from __future__ import annotations

import hashlib

from Crypto.Hash import keccak

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(B58)}
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(_BECH32)}
_BECH32M_CONST = 0x2BC830A3

#: Base58Check version byte -> (coin, kind)
_VERSIONS = {0x00: "btc", 0x05: "btc", 0x30: "ltc", 0x32: "ltc"}
#: Bech32 human-readable part -> coin (main networks only)
_HRPS = {"bc": "btc", "ltc": "ltc"}


def keccak256(data: bytes) -> bytes:
    h = keccak.new(digest_bits=256)
    h.update(data)
    return h.digest()


def b58decode(s: str) -> bytes | None:
    """Bitcoin's Base58 to bytes (leading '1's are zero bytes); None on a foreign character."""
    n = 0
    for c in s:
        i = _B58_INDEX.get(c)
        if i is None:
            return None
        n = n * 58 + i
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * (len(s) - len(s.lstrip("1"))) + body


def base58check(address: str) -> str | None:
    """``btc:`` or ``ltc:`` and the address when its Base58Check checksum holds and its version
    byte is a main-network one; else None."""
    if not 25 <= len(address) <= 35:
        return None
    raw = b58decode(address)
    if raw is None or len(raw) != 25:
        return None
    payload, check = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != check:
        return None
    coin = _VERSIONS.get(payload[0])
    return f"{coin}:{address}" if coin else None


def _polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def _convertbits(data: list[int], frombits: int, tobits: int) -> list[int] | None:
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if bits >= frombits or ((acc << (tobits - bits)) & maxv):
        return None
    return out


def segwit(address: str) -> str | None:
    """``btc:``/``ltc:`` and the lower-case address when it is a valid SegWit address (Bech32 for
    witness version 0, Bech32m for 1-16, program length per BIP-141); else None."""
    if not 14 <= len(address) <= 90 or (address.lower() != address and address.upper() != address):
        return None
    addr = address.lower()
    pos = addr.rfind("1")
    hrp, data_part = addr[:pos], addr[pos + 1 :]
    coin = _HRPS.get(hrp)
    if coin is None or len(data_part) < 7:
        return None
    data = [_BECH32_INDEX.get(c, -1) for c in data_part]
    if -1 in data:
        return None
    const = _polymod(_hrp_expand(hrp) + data)
    witver = data[0]
    if witver > 16 or const != (1 if witver == 0 else _BECH32M_CONST):
        return None
    program = _convertbits(data[1:-6], 5, 8)
    if program is None or not 2 <= len(program) <= 40:
        return None
    if witver == 0 and len(program) not in (20, 32):
        return None
    return f"{coin}:{addr}"


def ethereum(address: str) -> str | None:
    """``eth:`` and the lower-case address; a mixed-case address must carry a valid EIP-55
    checksum."""
    if len(address) != 42 or not address.startswith(("0x", "0X")):
        return None
    body = address[2:]
    try:
        int(body, 16)
    except ValueError:
        return None
    lower = body.lower()
    if body not in (lower, body.upper()):
        digest = keccak256(lower.encode("ascii")).hex()
        for c, d in zip(body, digest[:40], strict=True):
            if c.isalpha() and c.isupper() != (int(d, 16) >= 8):
                return None
    if lower == "0" * 40:
        return None
    return f"eth:0x{lower}"


_XMR_BLOCK = {11: 8, 7: 5, 2: 1}  # encoded characters -> bytes, for full and final blocks


def _monero_b58decode(s: str) -> bytes | None:
    out = bytearray()
    for start in range(0, len(s), 11):
        block = s[start : start + 11]
        size = 8 if len(block) == 11 else _XMR_BLOCK.get(len(block))
        if size is None:
            return None
        n = 0
        for c in block:
            i = _B58_INDEX.get(c)
            if i is None:
                return None
            n = n * 58 + i
        if n >= 1 << (8 * size):
            return None
        out += n.to_bytes(size, "big")
    return bytes(out)


def monero(address: str) -> str | None:
    """``xmr:`` and the address when it is a standard address or a subaddress of the main
    network whose Keccak checksum holds."""
    if len(address) != 95 or address[0] not in "48":
        return None
    raw = _monero_b58decode(address)
    if raw is None or len(raw) != 69 or raw[0] not in (18, 42):
        return None
    if keccak256(raw[:-4])[:4] != raw[-4:]:
        return None
    return f"xmr:{address}"


def crypto_address(token: str) -> str | None:
    """The coin-prefixed, normalised address ``token`` is, or None."""
    if token.startswith(("0x", "0X")):
        return ethereum(token)
    low = token[:4].lower()
    if low.startswith(("bc1", "ltc1")):
        return segwit(token)
    if len(token) == 95:
        return monero(token)
    if token[:1] in "13LM":
        return base58check(token)
    return None


__all__ = ["base58check", "crypto_address", "ethereum", "keccak256", "monero", "segwit"]
