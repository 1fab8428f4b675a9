"""Where things are, and which images exist: the images built here from recipes
(images/recipes.yaml), found in the cache or built on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.images.recipes import Recipe, load_recipes
from harness.images.store import ImageStore
from harness.images.tiny import TinyBuilder, recipe_digest
from harness.model import Image

ROOT_ENV = "HARNESS_ROOT"
CACHE_ENV = "HARNESS_CACHE"


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
    def __init__(self, workspace: Workspace, env: Mapping[str, str], log: Callable[[str], None]):
        self.workspace = workspace
        self.env = env
        self.log = log
        self.store = ImageStore(workspace.cache)
        self._builder: TinyBuilder | None = None
        self.recipes: dict[str, Recipe] = load_recipes(
            workspace.images / "recipes.yaml", workspace.images / "faults.yaml"
        )

    def names(self) -> list[str]:
        return sorted(self.recipes)

    def recipe(self, name: str) -> Recipe:
        if name not in self.recipes:
            raise UsageError(f"unknown image {name!r}; images: {', '.join(self.names())}")
        return self.recipes[name]

    def image(self, name: str) -> Image:
        """The image, built now if it never was or its recipe changed since. (New
        package versions are only looked for by `harness images build`: booting a
        cell never needs the network.)"""
        recipe = self.recipe(name)
        record = self.store.record(name)
        wanted = recipe_digest(recipe, self.workspace.images / "tiny")
        if record is None or record.get("recipe_digest") != wanted:
            self.build(recipe)
        found = self.store.image(name)
        assert found is not None
        return found

    def build(self, recipe: Recipe, force: bool = False) -> tuple[Path, bool]:
        from harness.images.debian import find_mirror

        if self._builder is None:
            mirror = find_mirror(self.env)
            self._builder = TinyBuilder(
                self.store, self.workspace.images / "tiny", mirror, self.log
            )
        return self._builder.build(recipe, force)

    def listing(self) -> list[dict[str, Any]]:
        rows = []
        for name in self.names():
            record = self.store.record(name) or {}
            rows.append(
                {
                    "name": name,
                    "source": _source(self.recipes[name]),
                    "state": "built" if record else "not built",
                    "size": record.get("size"),
                    "digest": record.get("digest", ""),
                    "built_at": record.get("built_at", ""),
                }
            )
        return rows


def _source(recipe: Recipe) -> str:
    crafted = ", crafted" if recipe.fault or not (recipe.esp and recipe.initrd) else ""
    return f"built here (Debian {recipe.suite}{crafted})"
