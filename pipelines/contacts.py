"""Contact strings in listing text, normalised so that two ways of writing one contact agree.

Sellers who run many shops often leave the same phone number, messenger handle, e-mail address
or shop URL in their descriptions, written differently each time: ``+86 138-0013-8000``,
``0086 13800138000`` and ``１３８ ００１３ ８０００`` are one number; ``WeChat: Shop_Lee``,
``微信 shop_lee`` and ``vx shop_lee`` one handle; ``J.Doe+shop@GMail.com`` and
``jdoe@gmail.com`` one mailbox; ``https://www.Shop.example/store/?utm_source=x`` and
``shop.example/store`` one page.

:func:`contact_keys` finds them in a text column (polars regular expressions over the whole
column) and normalises each distinct string once in Python; a key looks like
``phone:8613800138000``, ``wechat:shop_lee``, ``email:jdoe@gmail.com``, ``url:shop.example/store``.
Phone numbers go through Google's libphonenumber rules (the ``phonenumbers`` package): a number
written with its country code is parsed and checked by the rules of that country, one written
nationally is kept as its digits; either way the key is the national number without leading
zeros (a trunk prefix, or Italy's leading zero), so ``+44 7911 123456`` and ``07911 123456``
agree.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import phonenumbers
import polars as pl

#: messenger names as sellers write them -> the key's kind
MESSENGERS: dict[str, str] = {
    "wechat": "wechat",
    "we chat": "wechat",
    "weixin": "wechat",
    "wx": "wechat",
    "vx": "wechat",
    "v信": "wechat",
    "微信": "wechat",
    "telegram": "telegram",
    "tg": "telegram",
    "line": "line",
    "line id": "line",
    "kakao": "kakao",
    "kakaotalk": "kakao",
    "skype": "skype",
    "whatsapp": "whatsapp",
    "whats app": "whatsapp",
    "wa": "whatsapp",
}

_MESSENGER = (
    r"we\s?chat|weixin|wx|vx|v信|微信|telegram|tg|line(?:\s?id)?|kakao(?:talk)?|skype"
    r"|whats\s?app|wa"
)
#: a messenger name, what separates it from the handle ("id", ":", spaces) and the handle,
#: which ends where the word does (handles are ASCII: "destruição" holds none)
_HANDLE = (
    rf"(?i)(?:^|[^\p{{L}}\p{{N}}])({_MESSENGER})(\s*(?:id|号)?\s*[:：=]?\s*)@?"
    r"([a-z][a-z0-9_.\-]{3,31})(?:$|[^\p{L}\p{N}_])"
)
#: names that are also ordinary words or syllables ("line", "wa"): a handle after them needs
#: a ":" or "id" ("LINE: shoplee", "Line ID shoplee"), not just a space ("line bags")
_AMBIGUOUS = frozenset({"line", "wa", "tg", "wx", "vx"})
#: messenger links: t.me/handle, line.me/ti/p/~handle, wa.me/number
_LINK_HANDLE = (
    r"(?i)\b(t\.me|telegram\.me|line\.me/ti/p|wa\.me|api\.whatsapp\.com/send\?phone=)"
    r"/?~?@?([a-z0-9_+]{3,32})"
)
#: e-mail, also "name (at) host (dot) com" and "name[at]host.com"
_EMAIL = (
    r"(?i)[a-z0-9][a-z0-9._%+\-]{0,63}\s*(?:@|\(at\)|\[at\]|\{at\}|\s\(?at\)?\s)\s*"
    r"[a-z0-9\-]+(?:\s*(?:\.|\(dot\)|\[dot\]|\sdot\s)\s*[a-z0-9\-]+)+"
)
#: URLs with a scheme or "www.", and bare host names ending in a common top-level domain
_TLDS = (
    "com|net|org|shop|store|online|site|top|xyz|info|biz|io|co|me|cn|hk|tw|ru|de|uk|fr|it|es|nl"
    "|jp|kr|in|br|au|ca|us|eu|vip|club|ly|gl|gg"
)
_URL = (
    r"(?i)(?:https?://|www\.)[^\s<>\"'，。]+"
    rf"|\b[a-z0-9](?:[a-z0-9\-]{{0,61}}[a-z0-9])?(?:\.[a-z0-9\-]+)*\.(?:{_TLDS})\b(?:/[^\s<>\"'，。]*)?"
)
#: a phone number written internationally (+ or 00 and the country code) ...
_PHONE_INTL = r"(?:\+|\b00)\d[\d\s().\-/]{6,20}\d"
#: ... or after a word that announces one (otherwise digit runs are prices, sizes, model codes)
_PHONE_CUE = (
    r"(?i)(?:tel|phone|call|text|sms|mobile|mob|cell|contact|whats\s?app|wa|hotline|we\s?chat|weixin"
    r"|wx|vx|微信|telegram|line|viber|电话|手机|☎|📞|📱)"
    r"[^\d+]{0,12}((?:\+|00)?\d[\d\s().\-/]{6,20}\d)"
)

#: literals without which the e-mail, messenger-link and URL patterns cannot match (a quick
#: test that spares the patterns most texts)
_MAIL_MARKS = ["@", "(at)", "[at]", "{at}", " at "]
_LINK_MARKS = ["t.me", "telegram.me", "line.me", "wa.me", "whatsapp.com"]
_URL_MARKS = ["http", "www.", *(f".{t}" for t in _TLDS.split("|"))]

_SHORTENERS = frozenset({"bit.ly", "t.co", "tinyurl.com", "goo.gl", "is.gd", "ow.ly"})
#: query parameters that say where a click came from, not where it goes
_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|ref|spm|scm|from|share_source)$", re.I)
#: mail hosts that ignore dots in the local part
_DOTLESS = frozenset({"gmail.com", "googlemail.com"})


@functools.cache
def nfkc_unstable() -> str:
    """A regex character class of every character NFKC may change in some text: characters
    NFKC maps to something else, combining marks, characters that compose with the one before
    them (second halves of canonical pairs, Hangul vowel and final jamo). A text without any
    of them is already NFKC (the Unicode quick check answers yes), so it needs no normaliser:
    accented letters, CJK, emoji and ASCII pass as they are."""
    unstable = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    for cp in range(0x80, 0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        if unicodedata.combining(c) or unicodedata.normalize("NFKC", c) != c:
            unstable.add(cp)
        parts = unicodedata.decomposition(c).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            unstable.add(int(parts[1], 16))
    ranges: list[list[int]] = []
    for cp in sorted(unstable):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "[" + "".join(f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges) + "]"


def nfkc(texts: pl.Series) -> pl.Series:
    """NFKC-normalised texts (fullwidth and compatibility forms to their plain letters and
    digits); texts NFKC would not change, most of them, are left as they are without being
    copied through the normaliser (see :func:`nfkc_unstable`).

    Examples
    --------
    >>> nfkc(pl.Series(["ＷｅＣｈａｔ", "café", None])).to_list()
    ['WeChat', 'café', None]
    """
    unstable = texts.str.contains(nfkc_unstable()).fill_null(False)
    if not unstable.any():
        return texts
    at = unstable.arg_true()
    return texts.clone().scatter(at, texts.gather(at).str.normalize("NFKC"))


def _fold(text: str) -> str:
    """NFKC (fullwidth digits and letters to ASCII) and lower case."""
    return unicodedata.normalize("NFKC", text).casefold()


def phone_key(raw: str) -> str | None:
    """``phone:<national number>`` for a written phone number, or None if it cannot be one.

    Examples
    --------
    >>> phone_key("+86 138-0013-8000"), phone_key("0086 13800138000")
    ('phone:13800138000', 'phone:13800138000')
    >>> phone_key("+44 (0)7911 123456"), phone_key("07911 123456")
    ('phone:7911123456', 'phone:7911123456')
    >>> phone_key("12-34") is None
    True
    """
    text = _fold(raw).strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("00"):
        text, digits = "+" + text[2:], digits[2:]
    if text.startswith("+"):
        try:
            number = phonenumbers.parse(text, None)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_possible_number(number):
            return None
        # leading zeros (a trunk prefix, or Italy's zero that is part of the number) are left
        # out on both paths, so that a number written nationally gets the same key
        return f"phone:{number.national_number}"
    national = digits.lstrip("0")
    if not 7 <= len(national) <= 12:
        return None
    return f"phone:{national}"


def email_key(raw: str) -> str | None:
    """``email:<mailbox>``: lower case, "(at)"/"(dot)" spelt out, "+tag" dropped, and dots
    dropped where the provider ignores them.

    Examples
    --------
    >>> email_key("J.Doe+shop@GMail.com"), email_key("jdoe (at) gmail (dot) com")
    ('email:jdoe@gmail.com', 'email:jdoe@gmail.com')
    """
    text = _fold(raw)
    text = re.sub(r"\s*(?:\(at\)|\[at\]|\{at\}|\s\(?at\)?\s)\s*", "@", text)
    text = re.sub(r"\s*(?:\(dot\)|\[dot\]|\sdot\s)\s*", ".", text)
    text = re.sub(r"\s+", "", text)
    if text.count("@") != 1:
        return None
    local, host = text.split("@")
    host = host.strip(".")
    if "." not in host or not local:
        return None
    local = local.split("+", 1)[0]
    if host in _DOTLESS:
        local = local.replace(".", "")
        host = "gmail.com"
    return f"email:{local}@{host}" if local else None


def url_key(raw: str) -> str | None:
    """``url:<host/path>``: no scheme, no "www.", host in lower case, no tracking parameters,
    fragment or trailing slash. Messenger links become the handle they point to.

    Examples
    --------
    >>> url_key("https://www.Shop-Lee.example/store/?utm_source=x#top")
    'url:shop-lee.example/store'
    >>> url_key("t.me/ShopLee"), url_key("https://wa.me/8613800138000")
    ('telegram:shoplee', 'phone:13800138000')
    """
    text = unicodedata.normalize("NFKC", raw).strip().rstrip(".,;:!?)]}>\"'")
    text = re.sub(r"(?i)^[a-z][a-z0-9+.\-]*://", "", text)
    host, _, rest = text.partition("/")
    host = host.casefold().removeprefix("www.").split(":")[0]
    if "." not in host or not re.fullmatch(r"[a-z0-9.\-]+", host):
        return None
    path, _, query = rest.partition("?")
    path = path.split("#")[0].rstrip("/")
    if host in ("t.me", "telegram.me") and path:
        return handle_key("telegram", path.split("/")[0].lstrip("@"))
    if host == "line.me" and path.casefold().startswith("ti/p/"):
        return handle_key("line", path[5:].lstrip("~@"))
    if host == "wa.me" and path:
        return phone_key("+" + path.lstrip("+"))
    if host == "api.whatsapp.com":
        m = re.search(r"phone=\+?(\d+)", query)
        return phone_key("+" + m.group(1)) if m else None
    query = query.split("#")[0]
    kept = [p for p in query.split("&") if p and not _TRACKING.match(p.split("=")[0])]
    # a shortened link is opaque: its path is the whole identity, case included
    if host not in _SHORTENERS:
        path = path.casefold()
    key = host + ("/" + path if path else "") + ("?" + "&".join(sorted(kept)) if kept else "")
    return f"url:{key}"


def handle_key(messenger: str, handle: str, separator: str = ":") -> str | None:
    """``<messenger>:<handle>`` in lower case (these services ignore case); a WhatsApp
    "handle" is a phone number.

    Examples
    --------
    >>> handle_key("WeChat", "Shop_Lee"), handle_key("vx", "shop_lee")
    ('wechat:shop_lee', 'wechat:shop_lee')
    """
    name = re.sub(r"\s+", " ", _fold(messenger)).strip()
    kind = MESSENGERS.get(name)
    sep = _fold(separator)
    if kind is None or not sep or (name in _AMBIGUOUS and not re.search(r"[:：=]|id|号", sep)):
        return None
    if kind == "whatsapp":
        return phone_key(handle if handle.startswith("+") else "+" + handle)
    value = _fold(handle).strip("._-@~")
    if len(value) < 4:
        return None
    return f"{kind}:{value}"


def _key_of(kind: str, value: tuple[str, ...]) -> str | None:
    """The key of one match: ``value`` holds the match (phone, email, url) or its groups
    (handle: messenger, separator, handle; link: site, handle)."""
    if kind == "handle":
        return handle_key(value[0], value[2], value[1])
    if kind == "link":
        site, handle = value[0], value[1]
        return url_key(f"{site}{'' if site.endswith('=') else '/'}{handle}")
    if kind == "email":
        return email_key(value[0])
    if kind == "url":
        return url_key(value[0])
    return phone_key(value[0])


def contact_keys(frame: pl.DataFrame, column: str, *, row: str = "row") -> pl.DataFrame:
    """Every contact in ``frame[column]``: one row per (``row``, ``key``), with ``shown`` (the
    text as written, for reasons). Each distinct text is searched once, the costlier patterns
    only where a literal they need occurs, and each distinct match is normalised once."""
    texts = (
        frame.select(pl.col(row), pl.col(column).alias("text"))
        .filter(pl.col("text").is_not_null() & (pl.col("text").str.len_bytes() > 0))
        .with_columns(pl.col("text").cast(pl.Categorical).to_physical().alias("text_id"))
    )
    base = texts.select("text_id", "text").unique("text_id")
    base = base.with_columns(nfkc(base.get_column("text")))
    text = pl.col("text")
    marks = base.select(
        "text_id",
        "text",
        text.str.contains_any(_MAIL_MARKS, ascii_case_insensitive=True).alias("mail"),
        text.str.contains_any(_LINK_MARKS, ascii_case_insensitive=True).alias("link"),
        text.str.contains_any(_URL_MARKS, ascii_case_insensitive=True).alias("url"),
    )
    # e-mails first: their host part must not be read again as a URL; and a number inside a
    # link (wa.me/...) is read once, as the link. polars evaluates both branches of a
    # when/then, so the costly patterns run on the rows that need them, filtered first.
    # the URL pattern, the costliest, only where a scheme, "www." or a top-level domain occurs
    # ("at" marks half the texts that hold a mark at all)
    urls = marks.filter(pl.col("url"))
    special = marks.filter(~pl.col("url") & (pl.col("mail") | pl.col("link")))
    plain = marks.filter(~(pl.col("mail") | pl.col("link") | pl.col("url")))
    links = text.str.replace_all(_EMAIL, " ").str.replace_all(_LINK_HANDLE, " ")
    none = pl.lit(None, pl.List(pl.String))
    found_urls = urls.select(
        "text_id",
        text.str.extract_all(_EMAIL).alias("email"),
        links.str.extract_all(_URL).alias("url"),
        links.str.replace_all(_URL, " ").alias("rest"),
        text.str.extract_all(_LINK_HANDLE).alias("link"),
    )
    found_special = special.select(
        "text_id",
        text.str.extract_all(_EMAIL).alias("email"),
        none.alias("url"),
        links.alias("rest"),
        text.str.extract_all(_LINK_HANDLE).alias("link"),
    )
    found_plain = plain.select(
        "text_id",
        none.alias("email"),
        none.alias("url"),
        pl.col("text").alias("rest"),
        none.alias("link"),
    )
    rest = pl.col("rest")
    found = pl.concat([found_urls, found_special, found_plain]).select(
        "text_id",
        "email",
        "url",
        rest.str.extract_all(_PHONE_INTL).alias("phone_intl"),
        rest.str.extract_all(_PHONE_CUE).alias("phone_cue"),
        rest.str.extract_all(_HANDLE).alias("handle"),
        "link",
    )
    parts: list[pl.DataFrame] = []
    for kind, col in (("email", "email"), ("url", "url"), ("phone", "phone_intl")):
        parts.append(_normalised(found, "text_id", col, kind, lambda s: s))
    # the cue and handle patterns match with their context: pull the groups out again
    parts.append(
        _normalised(found, "text_id", "phone_cue", "phone", lambda s: s.str.extract(_PHONE_CUE, 1))
    )
    for col in ("handle", "link"):
        pattern = _HANDLE if col == "handle" else _LINK_HANDLE
        parts.append(
            _normalised(
                found,
                "text_id",
                col,
                col,
                lambda s, p=pattern, n=3 if col == "handle" else 2: pl.concat_list(
                    [s.str.extract(p, i) for i in range(1, n + 1)]
                ),
            )
        )
    keys = pl.concat(parts).unique(["text_id", "key"], maintain_order=True)
    return (
        texts.select(row, "text_id")
        .join(keys, on="text_id")
        .select(row, "key", "shown")
        .unique([row, "key"], maintain_order=True)
    )


def _normalised(found: pl.DataFrame, row: str, col: str, kind: str, value: object) -> pl.DataFrame:
    """Explode one kind of match, normalise its distinct values, drop what is no contact."""
    exploded = (
        found.select(row, pl.col(col).alias("shown"))
        .explode("shown")
        .drop_nulls("shown")
        .with_columns(value(pl.col("shown")).alias("value"))  # type: ignore[operator]
    )
    grouped = kind in ("handle", "link")
    distinct: list[tuple[str, ...]] = [
        tuple(v) if grouped else (v,)
        for v in exploded.get_column("value").unique().to_list()
        if v is not None and (not grouped or None not in v)
    ]
    keys = [_key_of(kind, v) for v in distinct]
    lookup = pl.DataFrame(
        {"value": [list(v) if grouped else v[0] for v in distinct], "key": keys},
        schema={"value": pl.List(pl.String) if grouped else pl.String, "key": pl.String},
    )
    return (
        exploded.join(lookup, on="value", how="inner")
        .drop_nulls("key")
        .select(row, "key", pl.col("shown").str.strip_chars())
    )
