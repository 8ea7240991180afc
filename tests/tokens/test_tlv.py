"""The one TLV codec and the codecs built on it: round trips, and every malformed shape is a
typed error (never an IndexError, never a silent misread, never value bytes in the message)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyfob.token import protocol as p
from keyfob.token.crypto import SINGLE_PROFILE_KEY as K
from keyfob.token.crypto import ecb_encrypt
from keyfob.token.errors import BadData, MalformedApdu, TlvError
from keyfob.token.tlv import Tlv

H = bytes.fromhex
T = 1_700_000_000
SECRETISH = bytes(range(0xA0, 0xB4))  # a value whose hex must never show in an error

tlvs = st.builds(Tlv, st.integers(0, 0xFF), st.binary(max_size=0xFF))


# --- Tlv: round trips ----------------------------------------------------------------------


@given(tlvs)
def test_one_tlv_round_trips(tlv: Tlv) -> None:
    raw = bytes(tlv)
    assert raw == bytes([tlv.tag, len(tlv.value)]) + tlv.value
    assert Tlv.parse(raw) == tlv
    assert Tlv.unpack(tlv.tag, raw) == tlv.value


@given(st.lists(tlvs, max_size=6))
def test_a_sequence_round_trips(items: list[Tlv]) -> None:
    raw = b"".join(bytes(t) for t in items)
    assert Tlv.parse_list(raw) == items


@given(st.lists(st.builds(Tlv, st.integers(0, 0xFF), st.binary(max_size=20)), max_size=8))
def test_nested_round_trips(children: list[Tlv]) -> None:
    outer = Tlv.nest(0x81, *children)
    assert Tlv.parse(bytes(outer)).children == children


def test_dict_of_distinct_tags() -> None:
    raw = bytes(Tlv(0x0A, b"\x01")) + bytes(Tlv(0x0D, b"\x1e"))
    assert Tlv.parse_dict(raw) == {0x0A: b"\x01", 0x0D: b"\x1e"}
    assert Tlv.parse_dict(b"") == {}


def test_simple_tlv_not_ber() -> None:
    """Tag 1F is one byte here (BER would read a multi-byte tag), and a length byte of 80 or
    more is the length itself (BER would read a long form)."""
    assert Tlv.parse(H("1F0102")) == Tlv(0x1F, b"\x02")
    long_value = bytes(0x81)
    assert Tlv.parse(bytes([0x70, 0x81]) + long_value) == Tlv(0x70, long_value)


def test_repr_never_shows_the_value() -> None:
    assert SECRETISH.hex() not in repr(Tlv(0x70, SECRETISH)).lower()


# --- Tlv: every malformed shape --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"", "truncated TLV at offset 0"),
        (H("70"), "truncated TLV at offset 0"),
        (H("7005") + SECRETISH[:3], "says 5 bytes, 3 follow"),
        (H("70FF"), "says 255 bytes, 0 follow"),
        (H("7001AA") + H("0B"), "1 trailing byte"),
        (H("7000") + H("0000"), "2 trailing byte"),
    ],
    ids=["empty", "tag only", "value cut short", "length past the end", "1 byte after", "2 after"],
)
def test_malformed_single_tlv(raw: bytes, words: str) -> None:
    with pytest.raises(TlvError, match=words) as err:
        Tlv.parse(raw)
    assert err.value.offset is not None
    assert isinstance(err.value, BadData)  # callers that catch BadData catch it


def test_truncated_second_element_names_its_offset() -> None:
    raw = bytes(Tlv(0x0A, b"\x01")) + H("0D05") + SECRETISH[:2]
    with pytest.raises(TlvError, match="offset 3") as err:
        Tlv.parse_list(raw)
    assert err.value.offset == 3


@given(tlvs, st.data())
def test_every_cut_and_every_extension_is_refused(tlv: Tlv, data: st.DataObject) -> None:
    raw = bytes(tlv)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(TlvError):
        Tlv.parse(raw[:cut])
    extra = data.draw(st.binary(min_size=1, max_size=4))
    with pytest.raises(TlvError, match="trailing"):
        Tlv.parse(raw + extra)


def test_unexpected_tag() -> None:
    with pytest.raises(TlvError, match="expected tag 95, found 70"):
        Tlv.unpack(0x95, H("7000"))


def test_repeated_tag() -> None:
    with pytest.raises(TlvError, match="tag 0A repeated at offset 3"):
        Tlv.parse_dict(H("0A0101") + H("0A0102"))


@pytest.mark.parametrize(
    ("tag", "value"),
    [(0x100, b""), (-1, b""), (0x70, bytes(0x100))],
    ids=["tag over a byte", "negative tag", "value over 255 bytes"],
)
def test_what_cannot_be_encoded_is_refused(tag: int, value: bytes) -> None:
    with pytest.raises(TlvError):
        Tlv(tag, value)


def test_errors_never_show_value_bytes() -> None:
    cases = [
        bytes([0x70, 40]) + SECRETISH,  # length past the end
        bytes(Tlv(0x70, SECRETISH)) + SECRETISH,  # trailing
        bytes(Tlv(0x71, SECRETISH)),  # wrong tag for unpack
    ]
    for raw in cases:
        with pytest.raises(TlvError) as err:
            Tlv.unpack(0x70, raw)
        text = f"{err.value} {err.value.hint}".lower()
        assert SECRETISH.hex() not in text and SECRETISH[:4].hex() not in text


# --- the config TLV ------------------------------------------------------------------------

SINGLE = H("81111F01010F046553F10086060A01010D011E")
MOLTO2 = H("81141F01020F046553F10086090A01010B01060D011E")
SYNC = H("81060F046553F100")


@pytest.mark.parametrize(
    ("raw", "layout", "config"),
    [
        (
            SINGLE,
            p.ConfigLayout.SINGLE,
            p.WireConfig(T, p.DisplayTimeout.S30, p.HmacAlgorithm.SHA1, None, p.TimeStep.S30),
        ),
        (
            MOLTO2,
            p.ConfigLayout.MOLTO2,
            p.WireConfig(T, p.DisplayTimeout.S60, p.HmacAlgorithm.SHA1, 6, p.TimeStep.S30),
        ),
        (SYNC, p.ConfigLayout.SYNC, p.WireConfig(T)),
    ],
    ids=["single profile", "molto2", "time sync"],
)
def test_config_layouts_round_trip(raw: bytes, layout: p.ConfigLayout, config) -> None:
    assert config.encode() == raw
    assert p.WireConfig.parse(raw) == config
    assert config.layout is layout


def test_builders_are_the_config_codec() -> None:
    assert p.single_config_tlv(T, p.HmacAlgorithm.SHA1, 30) == SINGLE
    assert p.molto2_config_tlv(T, p.HmacAlgorithm.SHA1, 6, 30) == MOLTO2
    assert p.molto2_sync_tlv(T) == SYNC


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (SINGLE[:-1], "says 17 bytes, 16 follow"),
        (SINGLE + b"\x00", "1 trailing byte"),
        (H("82") + SINGLE[1:], "expected tag 81, found 82"),
        (SINGLE.replace(H("1F0101"), H("1F0107")), "tag 1F: 7 is not a value"),
        (SINGLE.replace(H("0A0101"), H("0A0103")), "tag 0A: 3 is not a value"),
        (SINGLE.replace(H("0D011E"), H("0D012D")), "tag 0D: 45 is not a value"),
        (MOLTO2.replace(H("0B0106"), H("0B0107")), "tag 0B: 7 is not a value"),
        (H("81050F03") + H("6553F1"), "tag 0F holds 3 bytes"),
        (H("81031F0101"), "no clock"),
        (H("810C1F01011F01020F046553F100"), "tag 1F repeated"),
        (H("81110F046553F1001F010186060A01010D011E"), "byte for byte"),  # clock first
        (H("81131F01010F046553F10086060A01010D011E") + H("FF00"), "byte for byte"),  # unknown
        (H("810E1F01010F046553F10086030A0101"), "byte for byte"),  # algorithm, no step
        (H("810B1F01010F046553F1008600"), "byte for byte"),  # empty parameter container
    ],
    ids=[
        "cut short",
        "trailing byte",
        "wrong outer tag",
        "unknown display timeout",
        "unknown algorithm",
        "45 s step",
        "7 digits",
        "3-byte clock",
        "no clock",
        "repeated tag",
        "clock first",
        "unknown tag after",
        "algorithm without step",
        "empty parameters",
    ],
)
def test_config_malformed_shapes(raw: bytes, words: str) -> None:
    with pytest.raises(TlvError, match=words):
        p.WireConfig.parse(raw)


def test_config_step_and_algorithm_tables() -> None:
    assert [s.seconds for s in p.TimeStep] == [30, 60]
    assert p.TimeStep.of_seconds(60) is p.TimeStep.S60
    for alg in p.HmacAlgorithm:
        assert p.HmacAlgorithm.of(alg.algorithm) is alg
    with pytest.raises(BadData, match="45 s"):
        p.TimeStep.of_seconds(45)


# --- APDU framing, MAC, payloads, response blocks -----------------------------------------------


def _builders() -> list[p.Apdu]:
    return [
        p.get_info(),
        p.get_info(molto2=True),
        p.get_challenge(),
        p.get_challenge(short=True),
        p.answer_challenge(bytes(8), K),
        p.write_seed(SECRETISH, K),
        p.write_single_config(T, p.HmacAlgorithm.SHA1, 30, p.DisplayTimeout.S30, K),
        p.read_public_block(3),
        p.delete_seed(3),
        p.factory_reset(),
        p.Apdu(0x80, 0x41, 0, 1, b"\x70", le=0),
    ]


@pytest.mark.parametrize("apdu", _builders(), ids=lambda a: f"{a.cla:02X}{a.ins:02X}")
def test_apdu_parse_is_the_inverse_of_to_bytes(apdu: p.Apdu) -> None:
    assert p.Apdu.parse(apdu.to_bytes()) == apdu


def test_apdu_framing_as_the_card_reads_it() -> None:
    assert p.Apdu.parse(H("80410102")) == p.Apdu(0x80, 0x41, 1, 2)
    case4 = p.Apdu.parse(H("804100010170") + H("00") + H("FFFF"))  # beyond Le: ignored
    assert (case4.data, case4.le) == (b"\x70", 0)
    for short in (b"", H("80"), H("8041"), H("804100")):
        with pytest.raises(MalformedApdu):
            p.Apdu.parse(short)
    with pytest.raises(MalformedApdu, match="Lc says 5 bytes, 1 follow"):
        p.Apdu.parse(H("8041000005") + b"\x01")


def test_secure_commands_unwrap_and_check_the_mac() -> None:
    apdu = p.write_seed(SECRETISH, K)
    assert p.unwrap_secure(apdu, K) == p.seed_ciphertext(SECRETISH, K)
    flipped = p.Apdu(apdu.cla, apdu.ins, apdu.p1, apdu.p2, apdu.data[:-1] + b"\x00")
    assert p.unwrap_secure(flipped, K) is None
    with pytest.raises(MalformedApdu):
        p.unwrap_secure(p.Apdu(0x84, 0xC5, 1, 0, b"abc"), K)


def test_loggable_is_decided_by_the_builder() -> None:
    public = [p.get_info(), p.get_challenge(), p.read_public_block(0), p.delete_seed(0)]
    secret = [
        p.answer_challenge(bytes(8), K),
        p.write_seed(SECRETISH, K),
        p.write_title(0, "x", K),
        p.set_customer_key(b"new", K),
        p.sync_molto2_time(0, T, K),
    ]
    assert all(a.log_data for a in public)
    assert not any(a.log_data for a in secret)
    assert not p.Apdu.parse(p.get_info().to_bytes()).log_data  # parsed: nobody vouched
    assert SECRETISH.hex() not in repr(p.write_seed(SECRETISH, K)).lower()
    with pytest.raises(ValueError, match="MAC"):
        p.Apdu(p.Cla.SECURE, p.Ins.WRITE_CONFIG, 0, 0, b"x" * 8, log_data=True)


@pytest.mark.parametrize(
    ("ciphertext", "words"),
    [
        (b"", "0 bytes"),
        (bytes(17), "17 bytes"),
        (bytes(80), "80 bytes"),
        (ecb_encrypt(K, bytes(16)), "padding"),
    ],
    ids=["empty", "not whole blocks", "over 64 bytes", "bad padding"],
)
def test_payload_open_refuses(ciphertext: bytes, words: str) -> None:
    with pytest.raises(BadData, match=words):
        p.open_seed(ciphertext, K)


def test_payloads_round_trip() -> None:
    assert p.open_seed(p.seed_ciphertext(SECRETISH, K), K) == SECRETISH
    assert p.open_title(p.seal_payload("Gïthub".encode(), K), K) == "Gïthub"
    new = bytes(range(16))
    body = p.unwrap_secure(p.set_customer_key(b"whatever", K), K)
    assert body is not None and len(p.open_new_key(body, K)) == 16
    with pytest.raises(BadData, match="new customer key"):
        p.open_new_key(p.seal_payload(b"\x01" + new, K), K)


def test_info_block_round_trip_and_every_truncation() -> None:
    raw = p.build_info("8659622000001", T)
    assert p.parse_info(raw) == p.InfoBlock("8659622000001", T)
    # bytes after the clock are ignored (docs/token-protocol.md §4.2)
    assert p.parse_info(raw + b"\x00\x01") == p.InfoBlock("8659622000001", T)
    for cut in range(len(raw)):
        with pytest.raises(BadData, match="info block"):
            p.parse_info(raw[:cut])


def test_public_block_round_trip_and_malformed() -> None:
    block = p.PublicBlock(0x20, "VPN", T, T - 5, 1, 30, 6, True)
    raw = p.build_public_block(block)
    assert raw[:4] == H("951F701D") and len(raw) == 33
    assert p.parse_public_block(raw) == block
    with pytest.raises(TlvError, match="expected tag 95"):
        p.parse_public_block(H("941F701D") + raw[4:])
    with pytest.raises(TlvError, match="trailing"):
        p.parse_public_block(raw + b"\x00")
    with pytest.raises(TlvError, match="28 bytes, expected 29"):
        p.parse_public_block(H("951E701C") + raw[4:-1])
    with pytest.raises(TlvError):
        p.parse_public_block(p.build_info("123", T))  # what a single-profile token answers


def test_response_framing() -> None:
    assert p.split_response(p.response(0x9000, b"ab")) == (b"ab", 0x9000)
    with pytest.raises(BadData):
        p.split_response(b"\x90")
