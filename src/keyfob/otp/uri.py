"""``otpauth://`` URIs (Google's Key Uri Format) — parse leniently, build strictly.

Parsing tolerates every deviation seen in real QR codes (docs/formats.md §3.3): lower-case and
padded or space-grouped secrets, ``+`` meaning a space in the label, the issuer parameter
disagreeing with the label prefix (the parameter wins, with a warning), unknown parameters
(kept), a lower-case algorithm name. Building emits the canonical form every app reads.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, unquote_plus

from keyfob.errors import KeyfobError, SecretError, UriError
from keyfob.otp.credential import Credential, OtpType
from keyfob.otp.hotp import Algorithm
from keyfob.otp.secret import parse_secret, to_base32

SCHEME = "otpauth://"
_KNOWN = frozenset({"secret", "issuer", "algorithm", "digits", "period", "counter"})


def _split_label(label: str) -> tuple[str, str]:
    """Split ``Issuer:account``; the wiki allows spaces after the colon, so strip them."""
    if ":" in label:
        issuer, account = label.split(":", 1)
        return issuer.strip(), account.strip()
    return "", label.strip()


def _int_param(name: str, value: str, uri_hint: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise UriError(
            f"otpauth URI has a bad {name}: {value!r} is not a whole number", hint=uri_hint
        ) from None


def parse_otpauth(uri: str, *, allow_short: bool = False) -> Credential:
    """Parse one ``otpauth://totp|hotp/LABEL?PARAMS`` URI into a :class:`Credential`."""
    text = uri.strip()
    if not text.lower().startswith(SCHEME):
        scheme = text.split(":", 1)[0] if ":" in text else text[:20]
        raise UriError(
            f"not an otpauth URI: scheme {scheme!r}",
            hint="an authenticator QR code starts with otpauth://totp/ or otpauth://hotp/",
        )
    rest = text[len(SCHEME) :]
    rest, _, _fragment = rest.partition("#")
    path, _, query = rest.partition("?")
    type_text, _, raw_label = path.partition("/")
    type_text = type_text.lower()
    if type_text not in ("totp", "hotp"):
        raise UriError(
            f"unsupported OTP type {type_text!r} in otpauth URI",
            hint="keyfob handles totp and hotp; steam, yandex and motp are not OATH types",
        )
    otp_type = OtpType(type_text)
    # In the label '+' is a space (Microsoft 365 QR codes) and %2B a literal plus.
    label = unquote(raw_label.replace("+", " "))
    label_issuer, account = _split_label(label)

    params: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    warnings: list[str] = []
    notes: list[str] = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        key = unquote_plus(key).strip()
        value = unquote_plus(value)
        lkey = key.lower()
        if lkey in _KNOWN:
            if lkey in params:
                warnings.append(f"parameter {lkey!r} given twice; the first one is used")
                continue
            params[lkey] = value
        else:
            extra.append((key, value))

    hint = "check the QR code or URI you copied"
    if "secret" not in params or not params["secret"].strip():
        raise UriError("otpauth URI has no secret parameter", hint=hint)
    try:
        secret = parse_secret(params["secret"], "base32", allow_short=allow_short)
    except SecretError as exc:
        raise UriError(f"otpauth URI: {exc.message}", hint=exc.hint) from None

    issuer = label_issuer
    if "issuer" in params:
        param_issuer = params["issuer"].strip()
        if label_issuer and param_issuer == "Microsoft" and label_issuer != param_issuer:
            # Microsoft's own codes put the organisation in the label: Contoso:alice@…
            notes.append(
                f"label prefix {label_issuer!r} is the organisation, as Microsoft writes its "
                "codes; the issuer is 'Microsoft'"
            )
        elif label_issuer and param_issuer and label_issuer != param_issuer:
            warnings.append(
                f"issuer parameter {param_issuer!r} differs from label prefix "
                f"{label_issuer!r}; the parameter is used"
            )
        issuer = param_issuer or label_issuer

    try:
        algorithm = Algorithm.parse(params.get("algorithm", "SHA1"))
    except KeyfobError as exc:
        raise UriError(f"otpauth URI: {exc.message}", hint=exc.hint) from None
    digits = _int_param("digits", params["digits"], hint) if "digits" in params else 6
    period = _int_param("period", params["period"], hint) if "period" in params else 30
    counter = 0
    if otp_type is OtpType.HOTP:
        if "counter" in params:
            counter = _int_param("counter", params["counter"], hint)
            if counter < 0:
                raise UriError(f"otpauth URI has a negative counter {counter}", hint=hint)
        else:
            warnings.append("hotp URI without counter; starting at 0")
    try:
        return Credential(
            secret=secret,
            type=otp_type,
            issuer=issuer,
            account=account,
            algorithm=algorithm,
            digits=digits,
            period=period,
            counter=counter,
            extra=tuple(extra),
            warnings=tuple(warnings),
            notes=tuple(notes),
        )
    except KeyfobError as exc:
        raise UriError(f"otpauth URI: {exc.message}", hint=exc.hint) from None


def _q(text: str) -> str:
    return quote(text, safe="@")


def build_otpauth(cred: Credential, *, include_extra: bool = True) -> str:
    """The canonical URI: percent-encoded ``Issuer:account`` label and an ``issuer`` parameter,
    unpadded upper-case secret, explicit algorithm/digits/period (hardware burners and strict
    apps read them), ``counter`` for HOTP."""
    if cred.issuer:
        # A colon in the issuer would split the label wrongly when read back.
        label = _q(cred.issuer.replace(":", "")) + ":" + _q(cred.account)
    else:
        label = _q(cred.account)
    params = [("secret", to_base32(cred.secret))]
    if cred.issuer:
        params.append(("issuer", cred.issuer))
    params += [("algorithm", cred.algorithm.value), ("digits", str(cred.digits))]
    if cred.type is OtpType.TOTP:
        params.append(("period", str(cred.period)))
    else:
        params.append(("counter", str(cred.counter)))
    if include_extra:
        params += list(cred.extra)
    query = "&".join(f"{_q(k)}={quote(v, safe='')}" for k, v in params)
    return f"{SCHEME}{cred.type.value}/{label}?{query}"
