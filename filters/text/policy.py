"""The text filter's policy: match kinds and their scores, the notes reasons give them, what a
token is, how much of a description is read, and the thresholds for ambiguous and glued names.
The batch path (:mod:`filters.text.scoring`) and the one-listing twin
(:mod:`filters.text.record`) both read these tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


#: match kinds, most suspicious first (used to pick one mention per listing)
KIND_RANK = {
    "confusable": 0,
    "fullwidth": 1,
    "zero_width": 2,
    "masked": 3,
    "leet": 4,
    "spaced": 5,
    "typo": 6,
    "glued": 7,
    "native": 8,
    "alias": 9,
    "exact": 9,
    "description": 10,
    "compared": 11,
}


#: mentions written as the registry writes the name: ``form`` is its key (obfuscated ones are
#: priced as the brand's goods, whatever product line they name)
PLAIN_KINDS = ("exact", "alias", "native")


KIND_SCORE = {
    "exact": 0.10,
    "alias": 0.10,
    "native": 0.10,
    "typo": 0.80,
    "glued": 0.40,
    "leet": 0.85,
    "masked": 0.85,
    "spaced": 0.80,
    "confusable": 0.90,
    "fullwidth": 0.90,
    "zero_width": 0.90,
    # a name in the description only (the title names no brand): weaker than in the title
    "description": 0.05,
    "compared": 0.05,
}


#: mentions found in the description (a name written plainly there): "compared" ones are
#: comparisons or disclaimers ("works like Dyson", "Submariner homage") and count only with a
#: counterfeit phrase
DESCRIPTION_KINDS = ("description", "compared")


#: how much of a description is read: its first characters (a word cut there is not read)
DESCRIPTION_CHARS = 600


#: words that may stand between a comparison word and the name ("fits all Nike shoes")
COMPARISON_FILLERS = (
    "the", "a", "an", "your", "all", "any", "most", "other", "original", "genuine", "real",
)  # fmt: skip


#: how far before a name in a description a comparison word is looked for (characters)
CONTEXT_CHARS = 48


KIND_NOTE = {
    "typo": "{edits} edit{plural}",
    "glued": "glued to digits or a word",
    "leet": "leetspeak",
    "masked": "masked letters",
    "spaced": "spaced letters",
    "confusable": "look-alike characters",
    "fullwidth": "fullwidth characters",
    "zero_width": "hidden zero-width characters",
}


TOKEN_SYMBOLS = list("$@€©®£|!*•●#")


TOKEN = "[\\p{L}\\p{N}" + "".join(TOKEN_SYMBOLS) + "]+"


MAX_NGRAM = 3


#: a name glued to a word: the name's and the word's fewest letters ("guccishop")
MIN_GLUE_KEY = 5


MIN_GLUE_WORD = 3


#: a name made only of words at least this common (Zipf frequency: 3.5 is about three times in
#: a million words) in one of the word list's languages is ambiguous
AMBIGUOUS_ZIPF = 3.5


#: the shortest run of letters of a name that counts as one of its words ("D&G" has none)
MIN_NAME_WORD = 2
