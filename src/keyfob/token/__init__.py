"""Programmable TOTP tokens (Token2 single-profile NFC family and the Molto2): the wire protocol,
client sessions over any :class:`~keyfob.token.connection.Connection`, and a faithful emulator
of the card side, reachable in process or as a PC/SC card through vsmartcard's vpcd.

Modelled on yubikey-manager's ``yubikit``: ``protocol`` holds the wire constants and codecs,
``session`` the client logic over an abstract connection, and the CLI is a thin layer on top.
"""
