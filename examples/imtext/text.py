"""Text cleaning of the image-text example: ours and the released code's, per dataset.

* :func:`clean_text` (ours, both datasets): lower-case, optionally drop ASCII punctuation, keep
  the first ``max_words`` words.
* :func:`released_twitter_text` (Twitter2015, ``--preset official``): the released cleaning keeps
  the runs of ASCII letters that stand between word boundaries (the regular expression
  ``\b[A-Za-z]+\b``, Unicode word characters), then :func:`pre_caption` with 20 words: ``$T$``
  becomes ``t``, ``don't`` becomes ``don t``, and a word joined to a digit, an underscore or a
  non-ASCII letter vanishes whole (``2014``, ``t37``, ``snake_case``, ``café``).
* :func:`pre_caption` (Sarcasm, ``--preset official``): lower-case, delete
  ``,.'!?"()*#:;~``, ``-`` and ``/`` separate words, ``<person>`` becomes ``person``, capped at
  50 space-separated words.
"""

from __future__ import annotations

import re
import string

__all__ = ["PRE_CAPTION_DELETED", "clean_text", "pre_caption", "released_twitter_text"]

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ASCII_WORD = re.compile(r"\b[A-Za-z]+\b")
_WHITESPACE_RUN = re.compile(r"\s{2,}")
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
    """The released Twitter2015 cleaning: the ASCII-letter words between word boundaries
    (``\b[A-Za-z]+\b``), joined, then :func:`pre_caption` (lower-case, ``max_words`` words).

    >>> released_twitter_text("RT @Mets: $T$ wins 2014 opener vs t37, don't miss it!")
    'rt mets t wins opener vs don t miss it'
    >>> released_twitter_text("snake_case café naïve Zoë ok")
    'ok'
    """
    return pre_caption(" ".join(_ASCII_WORD.findall(text)), max_words)


def pre_caption(text: str, max_words: int = 50) -> str:
    """The released Sarcasm cleaning: lower-case, delete ``,.'!?"()*#:;~``, ``-`` and ``/``
    separate words, ``<person>`` becomes ``person``, every run of 2 or more whitespace
    characters becomes one space, trailing line breaks and outer spaces go; then the *spaces*
    separate words and the first ``max_words`` are kept (a lone tab or line break joins two
    words into one, which BERT's tokenizer still splits: such a text keeps more words).

    >>> pre_caption("<PERSON> said: no-one cares")
    'person said no one cares'

    >>> pre_caption("Great... another #Monday-morning \\"meeting\\" (yay!) w/ the boss :)")
    'great another monday morning meeting yay w the boss'
    >>> pre_caption("one\\ttwo three  four", 2)
    'one\\ttwo three'
    """
    text = text.lower().translate(_PRE_CAPTION).replace("<person>", "person")
    text = _WHITESPACE_RUN.sub(" ", text).rstrip("\n").strip(" ")
    words = text.split(" ")
    return text if len(words) <= max_words else " ".join(words[:max_words])
