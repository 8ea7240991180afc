"""File and image formats: seed files (PSKC, CSV) and QR codes. Depends only on ``otp``."""
