"""keyfob: hardware one-time-password tokens for multi-factor authentication.

Layers (dependencies point down only)::

    cli  ->  server / burn / toolset / token  ->  formats  ->  otp  ->  errors

``errors`` imports nothing; ``otp`` is pure maths and parsing with no I/O.
"""

__version__ = "0.1.0"
