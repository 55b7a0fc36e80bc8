"""Image filter: does the listing photo match a known fake or an official product photo?

Perceptual hashes compatible with the ``imagehash`` library (64-bit pHash and dHash, packed into
``uint64`` in the order of imagehash's hex string) are computed for listing photos and compared
with the registry's reference photos by Hamming distance. The reference side is augmented (8
orientations, crops of 5/10/15% per side and their mirror images: 14 variants) so a listing
needs one hash while mirrored, rotated and cropped copies still match.

A match is a reference within the match band of the combined (pHash + dHash) distance. The band
and the strength of a match come from how near unrelated real photographs come, for the number
of reference hashes compared (:mod:`filters.image.null`): with more references, chance matches
are likelier, the band narrower. The nearest reference explains the photo: a known fake counts
only when it is nearer than every official photo, so a reseller showing the brand's own photo is
explained by it. Score: the known fake nearest gives ``0.95 * strength``; an official photo
nearest gives ``0.35 * strength`` (authorised resellers use official photos too, and so do
counterfeiters); no match gives 0; no usable image gives null. Strength falls from 1 (a near
copy) to 0 at the edge of the band. A known fake that is itself a near copy of an official
photo cannot tell the two apart: it is reported when the registry is built or loaded and not
used.

The evidence columns ``image_official_distance`` / ``image_fake_distance`` hold the distance to
the nearest reference of that kind, capped at ``MAX_BAND + 1`` ("that far or farther": an exact
search within that band is what keeps matching 100k x 100k hashes to seconds).

The package, one concept per module, every name importable from ``filters.image``:

- :mod:`filters.image.policy`: match scores by kind, the pHash bound, reason wording;
- :mod:`filters.image.null`: the match band and a match's strength, from unrelated photos;
- :mod:`filters.image.decode`: reading photos safely;
- :mod:`filters.image.hashing`: pHash and dHash, mirror hashes, hashing on worker threads;
- :mod:`filters.image.cache`: reference hashes and their on-disk cache;
- :mod:`filters.image.search`: exact Hamming search;
- :mod:`filters.image.filter`: :class:`ImageFilter`.
"""

from filters.image.cache import (
    CACHE_FILE,
    CACHE_SCHEMA,
    CACHE_VERSION,
    REFERENCE_SCHEMA,
    CacheReport,
    build_image_cache,
    load_image_cache,
    near_copy_fakes,
    reference_hashes,
)
from filters.image.decode import (
    DRAFT_SIDE,
    MAX_IMAGE_BYTES,
    ImageRejected,
    ImageSource,
    open_image,
)
from filters.image.filter import (
    ImageFilter,
)
from filters.image.hashing import (
    CROPS,
    DCT_EPS,
    FLAT_STD,
    ORIENTATIONS,
    VARIANTS,
    hash_sources,
    mirror_distances,
    mirrored_dhash,
    mirrored_phash,
    phash_dhash,
)
from filters.image.policy import (
    ESCAPE_REASON,
    FLAT_REASON,
    KIND_SCORE,
    MATCH_SCHEMA,
    MAX_PHASH_DISTANCE,
    copied_fake_message,
)
from filters.image.search import (
    BestMatches,
    best_matches,
    hamming_pairs,
)

__all__ = [
    "CACHE_FILE",
    "CACHE_SCHEMA",
    "CACHE_VERSION",
    "CROPS",
    "DCT_EPS",
    "DRAFT_SIDE",
    "ESCAPE_REASON",
    "FLAT_REASON",
    "FLAT_STD",
    "KIND_SCORE",
    "MATCH_SCHEMA",
    "MAX_IMAGE_BYTES",
    "MAX_PHASH_DISTANCE",
    "ORIENTATIONS",
    "REFERENCE_SCHEMA",
    "VARIANTS",
    "BestMatches",
    "CacheReport",
    "ImageFilter",
    "ImageRejected",
    "ImageSource",
    "best_matches",
    "build_image_cache",
    "copied_fake_message",
    "hamming_pairs",
    "hash_sources",
    "load_image_cache",
    "mirror_distances",
    "mirrored_dhash",
    "mirrored_phash",
    "near_copy_fakes",
    "open_image",
    "phash_dhash",
    "reference_hashes",
]
