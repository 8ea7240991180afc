"""Programmable TOTP tokens (Token2 single-profile NFC family and the Molto2): the wire protocol,
client sessions over any :class:`~keyfob.token.connection.Connection`, and a faithful emulator
of the card side, reachable in process or as a PC/SC card through vsmartcard's vpcd.

Modelled on yubikey-manager's ``yubikit``: ``protocol`` holds every wire fact once (constants,
codecs, on the one TLV codec of ``tlv``) for the client and the emulator alike, ``session`` the
client logic over an abstract connection (one ``_send``, one status-word table), ``trace`` the
APDU debug log, and the CLI is a thin layer on top.
"""
