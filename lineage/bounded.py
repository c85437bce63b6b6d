"""Size-bounded YAML and JSON loading for hostile files.

Every parser of the lineage stage reads text that a stranger wrote. This module is the one
place that turns such text into Python data: it refuses files over a size bound, loads YAML
only through a ``yaml.SafeLoader`` that yields JSON-compatible values (dates stay strings,
as in the Hub's ``cardData``; sets become lists; binary is refused), refuses YAML whose
anchors and aliases would expand into a huge or circular structure (a "billion laughs"
card would otherwise explode when the registry serialises it), and turns every parse
failure into a one-line ``MalformedFileError`` that names the repo and file.

>>> load_json('{"r": 8}', repo_id="org/lora", filename="adapter_config.json", max_bytes=1024)
{'r': 8}
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from lineage.errors import FileTooLargeError, MalformedFileError

MIB = 1024 * 1024

# Nodes a YAML document may hold once its aliases are expanded. Real cards and mergekit
# configs hold a few thousand; a billion-laughs document holds 10^9.
MAX_YAML_NODES = 200_000


class JsonCompatibleLoader(yaml.SafeLoader):
    """SafeLoader whose documents serialise to JSON as they are: the registry stores them."""


JsonCompatibleLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_set_as_list(loader: yaml.SafeLoader, node: yaml.MappingNode) -> list[Any]:
    return list(loader.construct_mapping(node))


def _refuse_binary(loader: yaml.SafeLoader, node: yaml.Node) -> None:
    raise yaml.constructor.ConstructorError(
        None, None, "!!binary values are not allowed", node.start_mark
    )


JsonCompatibleLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str
)
JsonCompatibleLoader.add_constructor("tag:yaml.org,2002:set", _construct_set_as_list)
JsonCompatibleLoader.add_constructor("tag:yaml.org,2002:binary", _refuse_binary)


def as_text(data: str | bytes, *, repo_id: str | None, filename: str, max_bytes: int) -> str:
    """Check the size bound and return the text (bytes are decoded as UTF-8)."""
    size = len(data) if isinstance(data, bytes) else _utf8_length(data, max_bytes)
    if size > max_bytes:
        raise FileTooLargeError(
            f"file is {size} bytes, over the {max_bytes} byte limit for this kind of file",
            repo_id=repo_id,
            file=filename,
        )
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedFileError(
                f"not UTF-8 text (byte {exc.start})", repo_id=repo_id, file=filename
            ) from None
    return data.removeprefix("\ufeff")


def load_json(data: str | bytes, *, repo_id: str | None, filename: str, max_bytes: int) -> Any:
    """``json.loads`` with a size bound and one-line errors."""
    text = as_text(data, repo_id=repo_id, filename=filename, max_bytes=max_bytes)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedFileError(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            repo_id=repo_id,
            file=filename,
        ) from None
    except RecursionError:
        raise MalformedFileError(
            "invalid JSON: nested too deeply", repo_id=repo_id, file=filename
        ) from None


def load_json_object(
    data: str | bytes, *, repo_id: str | None, filename: str, max_bytes: int
) -> dict[str, Any]:
    """Like ``load_json``, and the top level must be an object."""
    value = load_json(data, repo_id=repo_id, filename=filename, max_bytes=max_bytes)
    if not isinstance(value, dict):
        raise MalformedFileError(
            f"expected a JSON object at the top level, got {type_name(value)}",
            repo_id=repo_id,
            file=filename,
        )
    return value


def load_yaml(
    text: str,
    *,
    repo_id: str | None,
    filename: str,
    what: str = "YAML",
    first_line: int = 1,
) -> Any:
    """``yaml.safe_load`` of one document, refusing alias bombs and circular aliases.

    ``first_line`` is the line of ``text`` within its file, so that error positions point
    into the file (a card's front matter starts on line 2).
    """
    loader = JsonCompatibleLoader(text)
    with _one_line_errors(loader, repo_id=repo_id, filename=filename, what=what, line=first_line):
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expanded_size(node, repo_id=repo_id, filename=filename, what=what)
        return loader.construct_document(node)


@contextlib.contextmanager
def _one_line_errors(
    loader: yaml.SafeLoader, *, repo_id: str | None, filename: str, what: str, line: int
) -> Iterator[None]:
    """Every YAML failure as a one-line ``MalformedFileError``; the loader disposed of."""
    try:
        yield
    except yaml.YAMLError as exc:
        raise MalformedFileError(
            f"malformed {what}: {_yaml_problem(exc, line)}", repo_id=repo_id, file=filename
        ) from None
    except RecursionError:
        raise MalformedFileError(
            f"malformed {what}: nested too deeply", repo_id=repo_id, file=filename
        ) from None
    except (ValueError, TypeError, OverflowError) as exc:
        # SafeLoader's constructors raise these for values such as "!!int abc".
        raise MalformedFileError(
            f"malformed {what}: {' '.join(str(exc).split())}", repo_id=repo_id, file=filename
        ) from None
    finally:
        loader.dispose()


def type_name(value: Any) -> str:
    """The JSON/YAML name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _utf8_length(text: str, max_bytes: int) -> int:
    # A str of more than max_bytes characters is over the bound whatever its encoding;
    # encoding it all just to measure would cost the memory the bound protects.
    if len(text) > max_bytes:
        return len(text)
    return len(text.encode("utf-8", errors="surrogatepass"))


def _check_expanded_size(root: yaml.Node, *, repo_id: str | None, filename: str, what: str) -> None:
    """Count the nodes the document would have with every alias expanded; refuse cycles.

    Aliases share node objects, so the count is memoised per node id: linear in the
    document's text even when the expansion is exponential.
    """
    expanded: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            expanded[key] = 1 + sum(expanded[id(child)] for child in _children(node))
            if expanded[key] > MAX_YAML_NODES:
                raise MalformedFileError(
                    f"malformed {what}: anchors and aliases expand to more than "
                    f"{MAX_YAML_NODES} nodes",
                    repo_id=repo_id,
                    file=filename,
                )
            continue
        if key in expanded:
            continue
        if key in on_path:
            raise MalformedFileError(
                f"malformed {what}: an alias refers to a node that contains it",
                repo_id=repo_id,
                file=filename,
            )
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) not in expanded:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _yaml_problem(exc: yaml.YAMLError, first_line: int) -> str:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return " ".join(str(exc).split())

    def at(mark: yaml.Mark | None) -> str:
        return f" at line {mark.line + first_line} column {mark.column + 1}" if mark else ""

    if not exc.problem:
        return f"{exc.context or 'invalid YAML'}{at(exc.context_mark)}"
    problem = f"{exc.problem}{at(exc.problem_mark)}"
    if exc.context:
        # "while parsing a flow sequence" and where it started: often where the mistake is.
        problem += f" ({exc.context}{at(exc.context_mark)})"
    return problem


@dataclass(frozen=True)
class YamlDocument:
    """One document of a YAML stream, as data, with where it starts in its file.

    ``split_from_duplicates`` marks a document cut out of a mapping whose top-level keys
    repeat (two configs pasted back to back); ``duplicate_keys`` lists keys repeated deeper
    down, where only the last value is what a YAML reader keeps.
    """

    data: Any
    line: int
    split_from_duplicates: bool = False
    duplicate_keys: tuple[str, ...] = ()


def load_yaml_documents(
    text: str,
    *,
    repo_id: str | None,
    filename: str,
    what: str = "YAML",
    first_line: int = 1,
) -> list[YamlDocument]:
    """Every document of a YAML stream (``---`` between documents), bounded like ``load_yaml``.

    A top-level mapping whose keys repeat is split where the first key comes again: such a
    mapping is two configurations written back to back, and a plain YAML reader would keep
    only the last value of each key, silently mixing the two.
    """
    loader = JsonCompatibleLoader(text)
    lines = text.splitlines()
    documents: list[YamlDocument] = []
    with _one_line_errors(loader, repo_id=repo_id, filename=filename, what=what, line=first_line):
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            _check_expanded_size(node, repo_id=repo_id, filename=filename, what=what)
            groups = _split_repeated_keys(node, lines)
            for group in groups:
                documents.append(
                    YamlDocument(
                        data=loader.construct_document(group),
                        line=group.start_mark.line + first_line,
                        split_from_duplicates=len(groups) > 1,
                        duplicate_keys=tuple(_nested_duplicates(group)),
                    )
                )
    return documents


def _split_repeated_keys(node: yaml.Node, lines: list[str]) -> list[yaml.Node]:
    """A top-level mapping cut into runs of distinct keys; any other node as it is.

    When a key comes again, the second configuration began somewhere after the key's first
    occurrence: at the last key there that follows a blank or comment line (how people
    separate pasted configs), else at the repeated key itself.
    """
    if not isinstance(node, yaml.MappingNode):
        return [node]
    pairs = node.value
    starts = [0]
    first_seen: dict[Any, int] = {}
    for index, (key_node, _) in enumerate(pairs):
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
        if key in first_seen:
            separated = [
                i
                for i in range(first_seen[key] + 1, index + 1)
                if _follows_separator(lines, pairs[i][0].start_mark.line)
            ]
            start = separated[-1] if separated else index
            starts.append(start)
            first_seen = {
                (k.value if isinstance(k, yaml.ScalarNode) else id(k)): i
                for i, (k, _) in enumerate(pairs[start : index + 1], start=start)
            }
            continue
        first_seen[key] = index
    if len(starts) == 1:
        return [node]
    bounds = [*starts, len(pairs)]
    return [
        yaml.MappingNode(
            node.tag,
            pairs[begin:end],
            start_mark=pairs[begin][0].start_mark,
            end_mark=pairs[end - 1][1].end_mark,
            flow_style=node.flow_style,
        )
        for begin, end in itertools.pairwise(bounds)
    ]


def _follows_separator(lines: list[str], line: int) -> bool:
    """Whether the line before ``line`` (0-based) is blank or a comment."""
    if line == 0 or line > len(lines):
        return False
    previous = lines[line - 1].strip()
    return not previous or previous.startswith("#")


def _nested_duplicates(root: yaml.Node) -> list[str]:
    """'key (line N)' for each mapping key below the top level that repeats in its mapping."""
    found: list[str] = []
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, True)]
    while stack:
        node, top = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and not top:
                    if key_node.value in keys:
                        found.append(f"{key_node.value} (line {key_node.start_mark.line + 1})")
                    keys.add(key_node.value)
        stack.extend((child, False) for child in _children(node))
    return found
