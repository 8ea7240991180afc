"""The RADIUS front end (RFC 2865 authentication, PAP): VPNs, Wi-Fi controllers and NPS ask
keyfob for the second factor through the same verification engine as the REST API.

``packets`` (wire format, Blast-RADIUS rules), ``clients`` (the NAS registry, sealed secrets),
``modes`` (otp, password+otp, challenge), ``cache`` (retransmissions), ``store`` (SQL),
``server`` (asyncio UDP). See docs/design.md §6.4.
"""
