"""Whether a text says something, however it is spelled: shared by the rules that read free text (R6, R7, R11).

People write in Chinese and English, in full-width or half-width forms, in any case, with spaces, hyphens,
underscores or invisible characters in between. A text is folded once (:func:`fold`), then read two ways:
Chinese words anywhere in it with everything but letters and digits removed (Chinese has no spaces to
anchor on), English words where a word starts (so ``bath`` finds "Bathroom" and "bath-house" but not
"birdbath", and ``class`` finds "classes" but not "subclass").
"""

from __future__ import annotations

import re
import unicodedata

#: Answers that say nothing at all, however punctuated or cased.
PLACEHOLDERS = frozenset(
    {"无", "没有", "不提供", "暂无", "无替代", "none", "no", "n/a", "na", "nil", "null", "-", "--", "tbd", "todo"}
)

_SEPARATORS = re.compile(r"[\W_]+")
_ENGLISH_WORD = re.compile(r"[a-z]+")


def fold(text: str) -> str:
    """NFKC (full-width letters become ASCII), case folded, invisible format characters (zero-width spaces,
    soft hyphens) removed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")


def names_any(text: str, *, english: tuple[str, ...], chinese: tuple[str, ...]) -> bool:
    """Whether ``text`` names any of ``chinese`` (anywhere) or ``english`` (at a word start).

    An English entry of several words (``"hotel room"``) also matches written as one (``hotelroom``,
    ``hotel-room``, ``Hotel  Room``): its last word may go on (``"changing room"`` finds "changing rooms").
    """
    folded = fold(text)
    compact = _SEPARATORS.sub("", folded)
    if any(word in compact for word in chinese):
        return True
    words = _ENGLISH_WORD.findall(folded)  # digits and other scripts separate English words too
    spaced = " " + " ".join(words)
    return any(f" {entry}" in spaced or any(w.startswith(entry.replace(" ", "")) for w in words) for entry in english)


def is_real_text(text: str, *, min_length: int = 4) -> bool:
    """Not a placeholder (``无``, ``n/a``, ``-``) and at least ``min_length`` characters besides the spaces
    and punctuation around it."""
    folded = unicodedata.normalize("NFKC", text).strip().lower()
    bare = re.sub(r"^[\W_]+|[\W_]+$", "", folded)  # punctuation and spaces around it, in any script
    return not (bare in PLACEHOLDERS or folded in PLACEHOLDERS or len(bare) < min_length)
