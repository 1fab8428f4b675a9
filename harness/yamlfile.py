"""Reading the YAML files people write (matrix.yaml, images/catalog.yaml): safe YAML
checked against a JSON Schema file, every error at once, each with the file, line and
key it is about. Never a traceback: whatever the file holds, the outcome is data or
one UsageError.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from harness.errors import UsageError

# A document this big, as written or after expanding aliases (an "alias bomb"), is
# not a matrix or a catalog (those are hundreds of values).
MAX_NODES = 100_000
MAX_BYTES = 16 * 1024 * 1024
# libyaml's loader when PyYAML was built with it (ten times faster), same results.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    return yaml.load(text, Loader=SafeLoader)


class FileErrors(UsageError):
    """All that is wrong with a file, one `file:line: key: problem` a line."""

    def __init__(self, problems: Sequence[str]):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def schema(name: str) -> dict[str, Any]:
    text = resources.files("harness.schemas").joinpath(f"{name}.schema.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def load(path: Path, schema_name: str = "matrix") -> tuple[dict[str, Any], yaml.Node]:
    """The document and its YAML node tree (for line numbers of later checks)."""
    try:
        # Only a regular file: /dev/zero would be read until memory ran out (its size
        # is 0), a FIFO waited on for ever.
        if path.exists() and not path.is_file():
            raise FileErrors([f"{path}: not a regular file"])
        if path.stat().st_size > MAX_BYTES:
            raise FileErrors([f"{path}:1: larger than {MAX_BYTES // 2**20} MiB"])
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise FileErrors([f"{path}: cannot read: {e}"]) from e
    try:
        _count_values(path, text)
        root = yaml.compose(text, Loader=SafeLoader)
        if root is None:
            raise FileErrors([f"{path}:1: the file is empty"])
        _check_size(path, root)
        data = _construct(root)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise FileErrors([f"{where}: not valid YAML: {problem}"]) from e
    except RecursionError as e:
        raise FileErrors([f"{path}: nested too deeply"]) from e
    if not isinstance(data, dict):
        raise FileErrors([f"{path}:1: expected a mapping, found {type(data).__name__}"])
    import jsonschema  # a tenth of a second to load: only for files that need it

    validator = jsonschema.Draft202012Validator(schema(schema_name))
    problems = [
        f"{path}:{line_of(root, error.absolute_path)}: {key_of(error.absolute_path)}: "
        f"{_message(error)}"
        for error in sorted(
            validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))
        )
    ]
    if problems:
        raise FileErrors(problems)
    return data, root


def _construct(root: yaml.Node) -> Any:
    """The document from the tree compose() made, rather than parsing the text again."""
    loader = SafeLoader("")
    try:
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _too_big(path: Path, line: int) -> FileErrors:
    return FileErrors([f"{path}:{line}: more than {MAX_NODES} values once aliases are expanded"])


def _count_values(path: Path, text: str) -> None:
    """Stops reading a huge file early: its events stream, where composing the whole
    tree first would take seconds."""
    count = 0
    for event in yaml.parse(text, Loader=SafeLoader):
        if isinstance(event, yaml.NodeEvent):
            count += 1
            if count > MAX_NODES:
                raise _too_big(path, event.start_mark.line + 1 if event.start_mark else 1)


def _check_size(path: Path, root: yaml.Node) -> None:
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 1 + sum(size(child) for child in _children(node))
            if sizes[id(node)] > MAX_NODES:
                raise _too_big(path, node.start_mark.line + 1)
        return sizes[id(node)]

    size(root)


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def node_at(root: yaml.Node, path: Sequence[Any]) -> yaml.Node:
    """The deepest node along `path` (keys and indexes) that exists."""
    node = root
    for step in path:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(step)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            child = node.value[step] if step < len(node.value) else None
        if child is None:
            break
        node = child
    return node


def line_of(root: yaml.Node, path: Sequence[Any]) -> int:
    return int(node_at(root, path).start_mark.line) + 1


def key_of(path: Sequence[Any]) -> str:
    if not path:
        return "(top)"
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path).lstrip(
        "."
    )


def _message(error: Any) -> str:
    """jsonschema's message, in the words of this file's readers."""
    message = str(error.message)
    if error.validator == "additionalProperties":
        # jsonschema lists every such key: a file that is no such file at all (a
        # password file) would be echoed whole. A typo is a key or two: named.
        known = set(error.schema.get("properties", {}))
        unknown = [key for key in error.instance if key not in known]
        if len(unknown) > 3:
            return f"{len(unknown)} unknown keys: is this the right file?"
        return message.replace("Additional properties are not allowed", "unknown key")
    if error.validator == "oneOf":
        return f"{_short(error.instance)} is not a valid value here"
    return message


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
