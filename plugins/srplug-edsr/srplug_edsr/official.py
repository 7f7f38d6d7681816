"""The authors' published EDSR / MDSR weights (EDSR-PyTorch, MIT licence) and how to fetch them.

The files live at ``https://cv.snu.ac.kr/research/EDSR/models/<name>.pt``. Following the
torch.hub convention, the 8 hex digits after the last ``-`` of a name are the start of the
file's sha256; srplug knows no full hash for them, so they are not registered as
:class:`srplug.Weights` (whose ``WeightsFile(url=...)`` needs all 64 digits) but fetched by
:func:`fetch_official`, which checks the prefix::

    import srplug, srplug_edsr

    up = srplug.get("edsr", weights=srplug_edsr.fetch_official("edsr_x4"))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from srplug import hub
from srplug.errors import ChecksumError, InputError
from srplug.weights import ModelCard

__all__ = ["BASE_URL", "OFFICIAL", "OfficialFile", "fetch_official"]

BASE_URL = "https://cv.snu.ac.kr/research/EDSR/models"
_PAPER_NOTE = "published PSNR (Y, Set5 / Set14 / B100 / Urban100): "


@dataclass(frozen=True)
class OfficialFile:
    """One published checkpoint: srplug model, scale (None: all of MDSR's), file name, card."""

    model: str
    scale: int | None
    name: str
    card: ModelCard

    @property
    def sha256_prefix(self) -> str:
        """The hash prefix in the name (``edsr_x4-4f62e9ef.pt`` -> ``4f62e9ef``)."""
        return Path(self.name).stem.rsplit("-", 1)[-1].lower()

    def url(self, base_url: str = BASE_URL) -> str:
        return f"{base_url.rstrip('/')}/{self.name}"


def _card(params: int, paper: str, notes: str = "") -> ModelCard:
    return ModelCard(
        params=params,
        training_data="DIV2K (800 training images)",
        license="MIT",
        source="EDSR-PyTorch (Lim et al. 2017)",
        notes=(_PAPER_NOTE + paper + (f"; {notes}" if notes else "")) if paper else notes,
    )


#: The EDSR-PyTorch files by key (the name without hash and suffix). ``params`` counts the
#: network without the two fixed mean-shift convolutions (24 values), as the paper does.
OFFICIAL: dict[str, OfficialFile] = {
    f.name.rsplit("-", 1)[0]: f
    for f in (
        OfficialFile(
            "edsr-baseline",
            2,
            "edsr_baseline_x2-1bc95232.pt",
            _card(1_369_859, "37.99 / 33.57 / 32.16 / 31.98"),
        ),
        OfficialFile(
            "edsr-baseline",
            3,
            "edsr_baseline_x3-abf2a44e.pt",
            _card(1_554_499, "34.37 / 30.28 / 29.08 / 28.15"),
        ),
        OfficialFile(
            "edsr-baseline",
            4,
            "edsr_baseline_x4-6b446fab.pt",
            _card(1_517_571, "32.09 / 28.58 / 27.57 / 26.04"),
        ),
        OfficialFile(
            "edsr", 2, "edsr_x2-0edfb8a3.pt", _card(40_729_603, "38.11 / 33.92 / 32.32 / 32.93")
        ),
        OfficialFile("edsr", 3, "edsr_x3-ea3ef2c6.pt", _card(43_680_003, "")),
        OfficialFile(
            "edsr", 4, "edsr_x4-4f62e9ef.pt", _card(43_089_923, "32.46 / 28.80 / 27.71 / 26.64")
        ),
        OfficialFile(
            "mdsr",
            None,
            "mdsr-4a78bedf.pt",
            _card(7_953_987, "", "80 blocks, branches x2/x3/x4 (all counted)"),
        ),
        OfficialFile(
            "mdsr",
            None,
            "mdsr_baseline-a00cab12.pt",
            _card(3_227_203, "", "16 blocks (mdsr blocks=16), branches x2/x3/x4 (all counted)"),
        ),
    )
}


def fetch_official(
    key: str | OfficialFile, *, base_url: str = BASE_URL, progress: bool = True
) -> Path:
    """Download one of :data:`OFFICIAL` into srplug's weights cache (once) and return its path.

    ``key`` is ``"edsr_baseline_x2"``, ``"edsr_x4"``, ``"mdsr"``, ... or an
    :class:`OfficialFile`; ``base_url`` points at a mirror holding the same file names. The
    file's sha256 must start with the prefix in its name, else it is deleted and
    :class:`~srplug.errors.ChecksumError` is raised. ``SRPLUG_OFFLINE=1`` forbids the network
    (a cached file still resolves).
    """
    if isinstance(key, OfficialFile):
        entry = key
    elif key in OFFICIAL:
        entry = OFFICIAL[key]
    else:
        raise InputError(f"no official EDSR/MDSR file {key!r}; known: {', '.join(OFFICIAL)}")
    path = hub.download(entry.url(base_url), sha256=None, filename=entry.name, progress=progress)
    actual = hub.sha256_file(path)
    if not actual.startswith(entry.sha256_prefix):
        path.unlink(missing_ok=True)
        raise ChecksumError(
            f"{entry.name}: sha256 {actual} does not start with {entry.sha256_prefix} as its "
            "name says; the download is corrupted or a different file (it was deleted): retry, "
            "or fetch it yourself and pass weights=PATH"
        )
    return path
