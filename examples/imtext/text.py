"""Text cleaning of the image-text example: ours and the released code's, per dataset.

* :func:`clean_text` (ours, both datasets): lower-case, optionally drop ASCII punctuation, keep
  the first ``max_words`` words.
* :func:`released_twitter_text` (Twitter2015, ``--preset official``): the released cleaning keeps
  only words made of letters, lower-cased, capped at 20: punctuation separates words (``$T$``
  becomes ``t``, ``don't`` becomes ``don t``), a word holding a digit vanishes (``2014``,
  ``t37``).
* :func:`pre_caption` (Sarcasm, ``--preset official``): lower-case, delete
  ``,.'!?"()*#:;~``, split on ``-`` and ``/``, capped at 50 words.

Where the released behaviour is known only from its description (apostrophes, URLs, non-ASCII
letters in the Twitter cleaning), the reading above is ours and written out in the docstrings.
"""

from __future__ import annotations

import re
import string

__all__ = ["PRE_CAPTION_DELETED", "clean_text", "pre_caption", "released_twitter_text"]

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_LETTERS = re.compile(r"[a-z]+")
#: The characters :func:`pre_caption` deletes.
PRE_CAPTION_DELETED = ",.'!?\"()*#:;~"
_PRE_CAPTION = str.maketrans({c: None for c in PRE_CAPTION_DELETED} | {"-": " ", "/": " "})


def clean_text(text: str, max_words: int, *, strip_punctuation: bool = False) -> str:
    """Lower-case, optionally drop ASCII punctuation, keep the first ``max_words`` words.

    >>> clean_text("RT @user: What a GREAT day!!", 4, strip_punctuation=True)
    'rt user what a'
    """
    text = text.lower()
    if strip_punctuation:
        text = text.translate(_PUNCTUATION)
    return " ".join(text.split()[:max_words])


def released_twitter_text(text: str, max_words: int = 20) -> str:
    """The released Twitter2015 cleaning: the first ``max_words`` letter-only words, lower-cased.

    Words are the runs of ASCII letters and digits (anything else separates them); a word with a
    digit is dropped.

    >>> released_twitter_text("RT @Mets: $T$ wins 2014 opener vs t37, don't miss it!")
    'rt mets t wins opener vs don t miss it'
    """
    words = _NOT_ALNUM.split(text.lower())
    return " ".join([w for w in words if _LETTERS.fullmatch(w)][:max_words])


def pre_caption(text: str, max_words: int = 50) -> str:
    """The released Sarcasm cleaning: lower-case, delete ``,.'!?"()*#:;~``, ``-`` and ``/``
    separate words, whitespace collapsed, the first ``max_words`` words.

    >>> pre_caption("Great... another #Monday-morning \\"meeting\\" (yay!) w/ the boss :)")
    'great another monday morning meeting yay w the boss'
    """
    return " ".join(text.lower().translate(_PRE_CAPTION).split()[:max_words])
