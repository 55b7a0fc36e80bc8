"""Safe persistence of a trained fusion model: a skops file plus a JSON model card beside it.

Nothing is unpickled. Loading checks, before any object is built, that the card exists and
names this file's sha256 (tampering), that the model was trained on the same registry and
feature set the caller scores with, that the archive unpacks to a bounded size, and that it
holds only the types a fusion model is made of (skops refuses every other type).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

from filters.core.errors import ModelError
from filters.core.files import file_digest, library_versions, write_bytes_atomic, write_json_atomic
from models.features import FEATURES
from models.fusion import FusionModel, LearnedFusion
from models.thresholds import Thresholds

FORMAT = "fakestop-fusion"
#: 2: the zero-shot risk feature, smoothed probabilities, the inputs trained with
FORMAT_VERSION = 2
#: the only types a saved fusion model may contain beyond skops' own safe defaults
TRUSTED_TYPES: tuple[str, ...] = (
    "models.fusion.FusionModel",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.model_selection._split.StratifiedKFold",
)
#: a fusion model unpacks to a few MB; an archive declaring more is refused before skops reads
#: it (a small file that inflates to gigabytes would exhaust memory)
MAX_UNPACKED_BYTES = 256 * 2**20


def card_path(model_path: str | os.PathLike[str]) -> Path:
    """Where the model card of ``model_path`` lives: ``MODEL.card.json``."""
    p = Path(model_path)
    return p.with_name(p.name + ".card.json")


def save_model(fusion: LearnedFusion, path: str | os.PathLike[str]) -> Path:
    """Write ``fusion`` to ``path`` (skops) and its card to :func:`card_path`; returns the card."""
    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, sio.dumps(fusion.model))
    card = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **fusion.card,
        "features": list(fusion.features),
        "thresholds": {
            **fusion.card.get("thresholds", {}),
            "block": fusion.thresholds.block,
            "review": fusion.thresholds.review,
        },
        "libraries": library_versions(),
        "model_file": path.name,
        "model_sha256": file_digest(path),
    }
    cpath = card_path(path)
    write_json_atomic(cpath, card)
    return cpath


def read_card(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The model card of ``path``, checked to belong to it (sha256) and to be a fakestop card."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file does not exist")
    cpath = card_path(path)
    try:
        card = json.loads(cpath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(
            f"{path}: no model card {cpath.name} beside it; not a fakestop model"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{cpath}: unreadable model card ({exc})") from None
    except RecursionError:
        raise ModelError(f"{cpath}: unreadable model card (nested too deeply)") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise ModelError(f"{cpath}: not a fakestop model card")
    if card.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{cpath}: model format version {card.get('format_version')!r}, "
            f"this fakestop reads version {FORMAT_VERSION}; retrain with `fakestop train`"
        )
    if card.get("model_sha256") != file_digest(path):
        raise ModelError(f"{path}: content does not match its model card (sha256); refusing it")
    return card


def _check_archive(path: Path) -> None:
    """Refuse a file that is no zip archive, or whose members would unpack too large."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise ModelError(f"{path}: not a skops model file ({exc})") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise ModelError(
            f"{path}: unpacks to {unpacked:,} bytes, more than a fusion model ever holds "
            f"({MAX_UNPACKED_BYTES:,}); refusing it"
        )


def load_model(
    path: str | os.PathLike[str], *, registry_fingerprint: str | None = None
) -> LearnedFusion:
    """Load a model written by :func:`save_model`, refusing anything it cannot vouch for."""
    import skops.io as sio

    path = Path(path)
    card = read_card(path)
    features = tuple(card.get("features", ()))
    if features != FEATURES:
        missing = sorted(set(features) ^ set(FEATURES))
        raise ModelError(
            f"{path}: trained on another feature set (differs in {missing}); retrain with "
            "`fakestop train`"
        )
    trained_on = card.get("registry_fingerprint")
    if registry_fingerprint is not None and trained_on != registry_fingerprint:
        raise ModelError(
            f"{path}: trained on another registry (fingerprint "
            f"{str(trained_on)[:12]}, scoring with "
            f"{registry_fingerprint[:12]}); retrain with `fakestop train`"
        )
    _check_archive(path)
    try:
        untrusted = set(sio.get_untrusted_types(file=path))
    except Exception as exc:  # skops raises assorted errors on a corrupt archive
        raise ModelError(f"{path}: not a readable skops model ({exc})") from None
    unexpected = sorted(untrusted - set(TRUSTED_TYPES))
    if unexpected:
        raise ModelError(f"{path}: contains types a fusion model never has: {unexpected}")
    try:
        model = sio.load(path, trusted=sorted(untrusted))
    except Exception as exc:
        raise ModelError(f"{path}: cannot load model ({exc})") from None
    if not isinstance(model, FusionModel):
        raise ModelError(f"{path}: holds a {type(model).__name__}, not a fusion model")
    th = card.get("thresholds", {})
    try:
        thresholds = Thresholds(block=float(th["block"]), review=float(th["review"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{card_path(path)}: bad thresholds ({exc})") from None
    return LearnedFusion(model=model, thresholds=thresholds, features=features, card=card)
