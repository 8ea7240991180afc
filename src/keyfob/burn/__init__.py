"""The burner: put a TOTP secret into a programmable token, check it, and enrol it — one token or
hundreds. Everything that can be checked is checked before the token is touched."""
