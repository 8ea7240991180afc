"""The one TLV codec of the token wire format: it builds what the client sends and parses what
the emulated card receives (and what the Molto2 answers), checking every length on the way.

These tokens use *simple* TLV — one tag byte, one length byte (0..255), the value — not the
BER-TLV that yubikit's ``Tlv`` reads: under BER a tag byte ending in ``1F`` opens a multi-byte
tag and a length byte of ``80`` or more announces a long form, and this protocol has a tag
``1F`` (display timeout) and would mis-parse. So the model is yubikit's (one class that builds
and parses, nested values, ``unpack`` of an expected tag), the encoding is the tokens'.

Errors (:class:`~keyfob.token.errors.TlvError`) name the tag, the offset and the lengths, never
the value's bytes: a value may be key material.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyfob.token.errors import TlvError

HEADER = 2  # tag byte + length byte
MAX_VALUE = 0xFF


@dataclass(frozen=True)
class Tlv:
    """One tag-length-value. ``bytes(tlv)`` is its encoding; :meth:`parse` is the inverse."""

    tag: int
    value: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.tag <= 0xFF:
            raise TlvError(f"tag {self.tag:#x} does not fit one byte")
        if len(self.value) > MAX_VALUE:
            raise TlvError(f"tag {self.tag:02X}: {len(self.value)} bytes exceed one length byte")

    @classmethod
    def nest(cls, tag: int, *children: Tlv) -> Tlv:
        """A constructed TLV: the children's encodings, in order, are the value."""
        return cls(tag, b"".join(bytes(child) for child in children))

    def __bytes__(self) -> bytes:
        return bytes([self.tag, len(self.value)]) + self.value

    def __repr__(self) -> str:  # never the value: it may be key material
        return f"Tlv(tag=0x{self.tag:02X}, length={len(self.value)})"

    @property
    def children(self) -> list[Tlv]:
        """The value read as a sequence of TLVs (for a constructed tag)."""
        return Tlv.parse_list(self.value)

    @classmethod
    def parse_from(cls, data: bytes, offset: int = 0) -> tuple[Tlv, int]:
        """The TLV starting at ``offset`` and the offset just after it."""
        left = len(data) - offset
        if left < HEADER:
            raise TlvError(
                f"truncated TLV at offset {offset}: {left} byte(s) left, a header needs {HEADER}",
                offset=offset,
            )
        tag, length = data[offset], data[offset + 1]
        end = offset + HEADER + length
        if end > len(data):
            raise TlvError(
                f"tag {tag:02X} at offset {offset} says {length} bytes, {left - HEADER} follow",
                offset=offset,
            )
        return cls(tag, bytes(data[offset + HEADER : end])), end

    @classmethod
    def parse_list(cls, data: bytes) -> list[Tlv]:
        """Every TLV in ``data``, which they must fill exactly."""
        found, offset = [], 0
        while offset < len(data):
            tlv, offset = cls.parse_from(data, offset)
            found.append(tlv)
        return found

    @classmethod
    def parse(cls, data: bytes) -> Tlv:
        """Exactly one TLV: trailing bytes are an error, not something to skip."""
        tlv, end = cls.parse_from(data)
        if end != len(data):
            raise TlvError(
                f"{len(data) - end} trailing byte(s) after tag {tlv.tag:02X} (offset {end})",
                offset=end,
            )
        return tlv

    @classmethod
    def unpack(cls, tag: int, data: bytes) -> bytes:
        """The value of the single TLV in ``data``, which must carry ``tag``."""
        tlv = cls.parse(data)
        if tlv.tag != tag:
            raise TlvError(f"expected tag {tag:02X}, found {tlv.tag:02X}", offset=0)
        return tlv.value

    @classmethod
    def parse_dict(cls, data: bytes) -> dict[int, bytes]:
        """Tag → value for a sequence of distinct tags; a repeated tag is an error (which of
        the two would the device keep?)."""
        values: dict[int, bytes] = {}
        offset = 0
        while offset < len(data):
            tlv, end = cls.parse_from(data, offset)
            if tlv.tag in values:
                raise TlvError(f"tag {tlv.tag:02X} repeated at offset {offset}", offset=offset)
            values[tlv.tag] = tlv.value
            offset = end
        return values
