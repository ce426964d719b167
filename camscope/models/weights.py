"""Where weights files come from: one search order for every model, never silently random.

Order: an explicit file or folder → ``$CAMSCOPE_WEIGHTS`` → ``./pretrained_weights/`` → files
shipped inside the package → the torch.hub / Hugging Face caches → (only if asked) a download
into the torch.hub cache. A file that is nowhere raises one message with the file name, its URL
and the folder to put it in.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from camscope.core.errors import WeightsError

ENV_VAR = "CAMSCOPE_WEIGHTS"
LOCAL_DIR = "pretrained_weights"
# Files shipped with the package (the mini zoo); a module attribute so tests can point elsewhere.
PACKAGED_DIR = Path(__file__).resolve().parent.parent / "zoo_weights"
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,})\.")


@dataclass(frozen=True)
class WeightsFile:
    """One file of published weights and how it maps onto the model.

    ``convert`` lists the steps (see :mod:`camscope.models.checkpoint`) from the loaded file to
    model state-dict entries. ``packaged`` files live in ``camscope/zoo_weights`` and are always
    present; ``hf_repo`` is a Hugging Face repository whose cached ``hf_filename`` also counts.
    """

    filename: str
    url: str | None = None
    convert: tuple[Any, ...] = ()
    role: str = "weights"
    packaged: bool = False
    hf_repo: str | None = None
    hf_filename: str = "model.safetensors"


@dataclass(frozen=True)
class Location:
    """Where a weights file was found (``path`` is None if nowhere) and every place looked at."""

    file: WeightsFile
    path: Path | None
    where: str = ""
    searched: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def found(self) -> bool:
        return self.path is not None


def search_dirs() -> list[tuple[str, Path]]:
    """The folders searched for official file names, after an explicit one, in order."""
    dirs: list[tuple[str, Path]] = []
    for entry in filter(None, os.environ.get(ENV_VAR, "").split(os.pathsep)):
        dirs.append((f"${ENV_VAR}", Path(entry).expanduser()))
    dirs.append((f"./{LOCAL_DIR}", Path.cwd() / LOCAL_DIR))
    return dirs


def default_destination() -> Path:
    """Where the error messages tell the user to put a missing file."""
    return search_dirs()[0][1]


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def locate(file: WeightsFile, weights: str | os.PathLike[str] | None = None, single: bool = True) -> Location:
    """Find ``file``. ``weights`` is the user's explicit file or folder: when given, only it counts.

    An explicit file stands for ``file`` itself when the model has a single weights file
    (``single``); otherwise its folder is searched for the official name.
    """
    if weights is not None:
        explicit = Path(weights).expanduser()
        if not explicit.exists():
            raise WeightsError(f"weights path {explicit} does not exist")
        if explicit.is_file():
            if single or explicit.name == file.filename:
                return Location(file, explicit, "given file", (explicit,))
            explicit = explicit.parent
        candidate = explicit / file.filename
        return Location(file, candidate if candidate.is_file() else None, "given folder", (candidate,))
    searched: list[Path] = []
    places = [*search_dirs()]
    if file.packaged:
        places.append(("camscope package", PACKAGED_DIR))
    places.append(("torch.hub cache", hub_checkpoint_dir()))
    for where, folder in places:
        candidate = folder / file.filename
        searched.append(candidate)
        if candidate.is_file():
            return Location(file, candidate, where, tuple(searched))
    cached = _hf_cached(file)
    if cached is not None:
        return Location(file, cached, "Hugging Face cache", tuple(searched))
    return Location(file, None, "", tuple(searched))


def _hf_cached(file: WeightsFile) -> Path | None:
    if not file.hf_repo:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - timm depends on huggingface_hub
        return None
    found = try_to_load_from_cache(file.hf_repo, file.hf_filename)
    return Path(found) if isinstance(found, str) else None


def download(file: WeightsFile) -> Path:
    """Fetch ``file.url`` into the torch.hub cache (checking the hash in torchvision-style names)."""
    if not file.url:
        raise WeightsError(f"{file.filename} has no download URL; put the file in {default_destination()}")
    destination = hub_checkpoint_dir() / file.filename
    destination.parent.mkdir(parents=True, exist_ok=True)
    match = _HASH_IN_NAME.search(file.filename)
    try:
        torch.hub.download_url_to_file(file.url, str(destination), hash_prefix=match.group(1) if match else None)
    except (OSError, RuntimeError, ValueError) as exc:
        raise WeightsError(
            f"could not download {file.filename} from {file.url} ({exc}); "
            f"download it yourself and put it in {default_destination()}"
        ) from exc
    return destination


def how_to_get(file: WeightsFile) -> str:
    """Where a missing file comes from, as an instruction: its download URL, the copy shipped in the
    package (the minis), its Hugging Face repository, or that none is known."""
    if file.url:
        return f"download {file.url}"
    if file.packaged:
        return f"copy {PACKAGED_DIR / file.filename} (shipped with camscope)"
    if file.hf_repo:
        return f"download {file.hf_filename} of the Hugging Face repository {file.hf_repo}"
    return "no public download is known"


def missing_message(model_name: str, missing: list[Location]) -> str:
    """One actionable message for every missing file of ``model_name``."""
    files = "; ".join(
        f"{loc.file.filename} from {loc.file.url}" if loc.file.url else f"{loc.file.filename} ({how_to_get(loc.file)})"
        for loc in missing
    )
    explicit = [loc for loc in missing if loc.where.startswith("given")]
    if explicit:
        place = str(explicit[0].searched[0].parent)
        return f"{model_name}: weights not found in {place}: get {files} into that folder"
    return (
        f"{model_name}: weights not found: get {files} and put {'it' if len(missing) == 1 else 'them'} in "
        f"{default_destination()} (or set ${ENV_VAR} / pass --weights DIR); --random-weights "
        "(random_weights=True in Python) runs without them, for wiring tests only"
    )
