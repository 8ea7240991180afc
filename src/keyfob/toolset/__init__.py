"""The admin's toolset beside ``burn``: probe the clock skew a verifier accepts (``skew``), measure
a token's clock drift (``drift``, ``survey``) and convert seed files (``convert``).

Built on ``otp``, ``formats`` and ``token`` only (docs/design.md §2); the CLI sits on top. A
verifier is reached through a :class:`~keyfob.toolset.skew.ProbeTarget`, so a new kind of
verifier is one more class.
"""
