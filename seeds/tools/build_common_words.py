"""Regenerate ``seeds/registry/common_words.txt``: words the text filter never fuzzy-matches.

The most common words of English (20,000) and of Spanish, French, German, Portuguese and Italian
(5,000 each), from the ``wordfreq`` package (a development-time tool, not a runtime dependency),
lower case, letters only, at least 3 letters. Brand names and aliases of ``brands.csv`` are left
out: a brand word that is also an ordinary word ("coach", "shell") is declared in
``lexicon.toml``'s ``[ordinary]`` section instead, with the phrases that show its ordinary use.

Run: ``pip install wordfreq && python seeds/tools/build_common_words.py``
"""

from __future__ import annotations

from pathlib import Path

import wordfreq

from pipelines.registry import brand_key, load_registry

REGISTRY = Path(__file__).resolve().parents[1] / "registry"
SIZES = {"en": 20_000, "es": 5_000, "fr": 5_000, "de": 5_000, "pt": 5_000, "it": 5_000}


def main() -> None:
    registry = load_registry(REGISTRY)
    brand_keys = {brand_key(b) for b in registry.brand_names}
    for aliases in registry.brands.get_column("aliases").to_list():
        brand_keys.update(brand_key(a) for a in aliases)
    words: set[str] = set()
    for lang, n in SIZES.items():
        for w in wordfreq.top_n_list(lang, n):
            w = w.casefold()
            if len(w) >= 3 and w.isalpha() and w not in brand_keys:
                words.add(w)
    header = (
        "# common words never fuzzy-matched to a brand; built by seeds/tools/build_common_words.py"
    )
    text = "\n".join([header, *sorted(words)]) + "\n"
    (REGISTRY / "common_words.txt").write_text(text, encoding="utf-8")
    print(f"{len(words)} words")


if __name__ == "__main__":
    main()
