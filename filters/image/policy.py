"""The image filter's policy: the score of a match by the kind of reference, the pHash bound of
every match, the evidence columns naming the matched reference, and the wording of its reasons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    pass


#: pHash distance above which two photos never match, whatever their dHash distance
MAX_PHASH_DISTANCE = 14


#: image score of a full-strength match, by the kind of the nearest reference
KIND_SCORE = {"fake": 0.95, "official": 0.35}


#: the evidence naming the reference photo that explains a listing's photo: its path in the
#: registry, "fake" or "official", the variant it matched in and the combined distance
MATCH_SCHEMA: dict[str, pl.DataType] = {
    "image_match": pl.String(),
    "image_match_kind": pl.String(),
    "image_match_variant": pl.String(),
    "image_match_distance": pl.Int32(),
}


FLAT_REASON = "image is flat (no detail to compare)"


ESCAPE_REASON = "path escapes the images directory"


def copied_fake_message(fake: str, official: str, distance: int) -> str:
    """How a known fake that copies an official photo is reported."""
    return (
        f"known fake {fake} is a near copy of official photo {official} (distance {distance}): "
        "it cannot tell a counterfeit from the brand's own photo and is not used as evidence"
    )


def once_in(chance: float) -> str:
    """How often ``chance`` comes: "once in 2,400", "once in 3.1 million", "less than once
    in a trillion"."""
    if not chance > 0:
        return "never"
    odds = 1.0 / chance
    if odds >= 1e12:
        return "less than once in a trillion"
    for size, word in ((1e9, "billion"), (1e6, "million")):
        if odds >= size:
            x = odds / size
            return f"once in {x:.1f} {word}" if x < 10 else f"once in {x:,.0f} {word}"
    return f"once in {odds:,.0f}"
