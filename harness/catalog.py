"""Where things are, and which images and firmware exist:

- images built here from recipes (images/recipes.yaml, images/faults.yaml), found in
  the cache or built on first use;
- downloadable images (images/catalog.yaml, plus $HARNESS_CATALOG), fetched and
  verified on first use;
- firmware: `none`, `aavmf` (the host's, via QEMU's descriptors), `uboot` (the host's
  u-boot-qemu), named builds (images/firmware.yaml), or a CODE file given by path.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import CellSkipped, UsageError
from harness.images.firmware_builds import FirmwareBuild, firmware_build, load_builds
from harness.images.limits import DownloadLimits
from harness.images.recipes import Recipe, duration, expected_build_s, load_recipes
from harness.images.store import ImageStore
from harness.images.tiny import TinyBuilder, recipe_digest
from harness.model import BUILTIN_FIRMWARE, Firmware, Image

if TYPE_CHECKING:
    # Downloads (requests, jsonschema, the catalog file) are loaded when first used:
    # booting a built image needs none of them, and loading them costs 0.4 s.
    from harness.images.download import Downloader, Progress
    from harness.images.remote import RemoteImage

OFFLINE_ENV = "HARNESS_OFFLINE"

ROOT_ENV = "HARNESS_ROOT"
CACHE_ENV = "HARNESS_CACHE"
CATALOG_ENV = "HARNESS_CATALOG"


class NotBuilt(CellSkipped):
    """Offline, and the image is not built (or its recipe changed): the cell is a
    skip, and nothing asks the Debian mirror."""

    reason = "not-built-offline"


@dataclass(frozen=True)
class Workspace:
    root: Path
    cache: Path

    @classmethod
    def locate(cls, env: Mapping[str, str]) -> Workspace:
        """The checkout the harness runs from ($HARNESS_ROOT, else this package's
        checkout, else the current directory)."""
        if env.get(ROOT_ENV):
            root = Path(env[ROOT_ENV])
        else:
            checkout = Path(__file__).resolve().parent.parent
            root = checkout if (checkout / "images").is_dir() else Path.cwd()
        cache = Path(env[CACHE_ENV]) if env.get(CACHE_ENV) else root / "images" / "cache"
        return cls(root, cache)

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def results(self) -> Path:
        return self.root / "results"


class Catalog:
    def __init__(
        self,
        workspace: Workspace,
        env: Mapping[str, str],
        log: Callable[[str], None],
        offline: bool = False,
        verify: bool = True,
        progress: Progress | None = None,
        notice: Callable[[str], None] | None = None,
    ):
        self.workspace = workspace
        self.env = env
        self.log = log
        self.offline = offline or env.get(OFFLINE_ENV, "") not in ("", "0")
        self.verify = verify
        self.progress = progress
        # A wait the user did not ask for (a build a boot needs) is said on stderr,
        # --quiet or not: a silent 20 minutes looks like a hang.
        self.notice = notice or _to_stderr
        self.limits = DownloadLimits.from_env(env)
        # Set by a command that is interrupted while builds run on worker threads
        # (commands/common.prepare, the matrix runner): they stop (harness/cancel.py).
        self.cancel = threading.Event()
        self.store = ImageStore(workspace.cache)
        self._builder: TinyBuilder | None = None
        self.recipes: dict[str, Recipe] = load_recipes(
            workspace.images / "recipes.yaml", workspace.images / "faults.yaml"
        )

    @cached_property
    def downloader(self) -> Downloader:
        from harness.images.download import Downloader

        return Downloader(
            self.workspace.cache,
            offline=self.offline,
            progress=self.progress,
            limits=self.limits,
            cancel=self.cancel,
        )

    @cached_property
    def remote(self) -> dict[str, RemoteImage]:
        from harness.images.remote import load_catalog

        entries = load_catalog(self.workspace.images / "catalog.yaml", self._mirror)
        if self.env.get(CATALOG_ENV):
            entries.update(load_catalog(Path(self.env[CATALOG_ENV]), self._mirror))
        return entries

    @cached_property
    def firmware_builds(self) -> dict[str, FirmwareBuild]:
        return load_builds(self.workspace.images / "firmware.yaml")

    def names(self) -> list[str]:
        return [*sorted(self.recipes), *sorted(set(self.remote) - set(self.recipes))]

    def image_names(self) -> Collection[str]:
        """Every image name, the downloadable ones read only if a name is not a recipe."""
        return _Names(self)

    def firmware_names(self) -> list[str]:
        """The firmware words a cell may use here: the built-in ones, then the
        builds of images/firmware.yaml (a CODE file's path is not listed)."""
        return [*BUILTIN_FIRMWARE, *sorted(self.firmware_builds)]

    def recipe(self, name: str) -> Recipe:
        if name not in self.recipes:
            raise UsageError(f"unknown image {name!r}; images: {', '.join(self.names())}")
        return self.recipes[name]

    def image(self, name: str) -> Image:
        """The image: built now if it never was or its recipe changed since, fetched
        now if it is a download that is not cached. (New package versions are only
        looked for by `harness images build`: booting never needs the network for
        an image it has.) Raises ImageBuildError for a full image this host cannot
        build, before any build is announced."""
        if name not in self.recipes and name in self.remote:
            from harness.images.remote import fetch

            return fetch(self.remote[name], self.downloader, self.verify)
        recipe = self.recipe(name)
        if why := self.unavailable_offline(name):
            raise NotBuilt(f"{why}: {name}; `harness images build {name}` builds it")
        record = self.store.record(name)
        if self._stale(name, record):
            if recipe.kind == "full":  # said before a build is announced, not 3 s into it
                from harness.images.full import check_host

                check_host()
            why = "is not built" if record is None else "changed since its build"
            expected = duration(expected_build_s(recipe, record))
            self.notice(
                f"{name} {why}: building it now, about {expected} "
                f"(`harness images build {name}` builds it ahead of a run)"
            )
            started = time.monotonic()
            self.build(recipe, log=self.notice)
            self.notice(f"{name}: built in {duration(time.monotonic() - started)}")
        found = self.store.image(name)
        assert found is not None
        return found

    def unavailable_offline(self, name: str) -> str:
        """Why image `name` cannot be had now that the network is not to be used:
        "not built (offline)", "not cached (offline)", or "" when it can (or when
        online). Reads the cache only."""
        if not self.offline:
            return ""
        if name in self.recipes:
            record = self.store.record(name)
            if record is None:
                return "not built (offline)"
            if self._stale(name, record):
                return "not built (offline): its recipe changed since it was built"
            return ""
        if name in self.remote:
            from harness.images.remote import cached

            return "" if cached(self.remote[name], self.downloader) else "not cached (offline)"
        return ""

    def cannot_build(self, name: str) -> str:
        """Why recipe image `name` needs a build this host cannot make (a full image
        without mmdebstrap: images/full.py's host_lacks, the check its build makes),
        or "" (built and current, not a full image, or buildable). Reads the cache and
        the host's PATH only."""
        recipe = self.recipes.get(name)
        if recipe is None or recipe.kind != "full":
            return ""
        if not self._stale(name, self.store.record(name)):
            return ""
        from harness.images.full import host_lacks

        return host_lacks()

    def not_ready(self, name: str) -> str:
        """Why `image(name)` would build or download before it returns ("" when it
        would not), with the command that does it: for commands that only describe
        an image and must never start a 20-minute build. Raises UsageError for an
        unknown name."""
        if name not in self.recipes and name in self.remote:
            from harness.images.remote import cached

            if cached(self.remote[name], self.downloader):
                return ""
            return f"image {name} is not downloaded: harness images fetch {name}"
        self.recipe(name)
        record = self.store.record(name)
        if record is None:
            return f"image {name} is not built: harness images build {name}"
        if self._stale(name, record):
            return f"image {name} is out of date (its recipe changed): harness images build {name}"
        return ""

    def _stale(self, name: str, record: dict[str, Any] | None) -> bool:
        """Whether recipe image `name`, recorded as `record`, needs a build: never
        built, or its recipe or guest files changed since."""
        wanted = recipe_digest(self.recipes[name], self.workspace.images / "tiny")
        return record is None or record.get("recipe_digest") != wanted

    def firmware(self, name: str, resolve_host: Callable[[str], Firmware]) -> Firmware:
        if name in self.firmware_builds:
            mirror = None if self.offline else self._mirror()
            return firmware_build(
                name,
                self.firmware_builds[name],
                self.workspace.cache,
                mirror,
                self.offline,
                self.notice,
                self.cancel,
            )
        return resolve_host(name)

    def _mirror(self) -> str:
        from harness.images.debian import find_mirror

        return find_mirror(self.env)

    def build(
        self, recipe: Recipe, force: bool = False, log: Callable[[str], None] | None = None
    ) -> tuple[Path, bool]:
        """Builds `recipe` (unless its entry exists and not `force`); its steps are
        told to `log` (default: the catalog's log). Returns (entry, built now)."""
        if self.offline:
            raise NotBuilt(f"cannot build {recipe.name} offline: building needs the Debian mirror")
        if self._builder is None:
            guest_files = self.workspace.images / "tiny"
            self._builder = TinyBuilder(
                self.store, guest_files, self._mirror(), self.log, self.cancel
            )
        return self._builder.build(recipe, force, log)

    def listing(self) -> list[dict[str, Any]]:
        from harness.images.remote import cached

        rows = []
        for name in self.names():
            if name in self.recipes:
                record = self.store.record(name) or {}
                rows.append({
                    "name": name,
                    "source": _source(self.recipes[name]),
                    "state": "built" if record else "not built",
                    "size": record.get("size"),
                    "digest": record.get("digest", ""),
                    "built_at": record.get("built_at", ""),
                })  # fmt: skip
                continue
            entry = self.remote[name]
            have = cached(entry, self.downloader)
            rows.append({
                "name": name,
                "source": f"download ({entry.distro} {entry.release})",
                "state": _download_state(entry, self.downloader) if have else "not cached",
                "size": _cached_size(entry, self.downloader) if have else None,
                "digest": next((f.digest for _, f in entry.files() if f.digest), ""),
                "built_at": "",
            })  # fmt: skip
        return rows


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _Names(Collection[str]):
    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def __contains__(self, name: object) -> bool:
        return name in self.catalog.recipes or name in self.catalog.remote

    def __iter__(self) -> Iterator[str]:
        return iter(self.catalog.names())

    def __len__(self) -> int:
        return len(self.catalog.names())


def _download_state(entry: RemoteImage, downloader: Downloader) -> str:
    """verified, unverified (--no-verify), or changed: a file differs from the one
    verified (the next use hashes it again, and fetches it again if it differs)."""
    from harness.images.digest import Digest

    state = "verified"
    for _, file in entry.files():
        known = downloader.known(file.url) or {}
        digest = known.get("digest") or file.digest
        if digest and downloader.blob_state(Digest.parse(digest)) == "changed":
            return "changed"
        if not known.get("verified", bool(file.digest)):
            state = "unverified"
    return state


def _cached_size(entry: RemoteImage, downloader: Downloader) -> int:
    total = 0
    for _, file in entry.files():
        known = downloader.known(file.url)
        digest = known["digest"] if known else file.digest
        algorithm, _, value = digest.partition(":")
        path = downloader.cache / "blobs" / algorithm / value
        total += path.stat().st_size if path.exists() else 0
    return total


def _source(recipe: Recipe) -> str:
    crafted = ", crafted" if recipe.fault or not (recipe.esp and recipe.initrd) else ""
    return f"built here (Debian {recipe.suite}{crafted})"
