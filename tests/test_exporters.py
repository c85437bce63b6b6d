"""Lineage graph exporters: contracts, round trips, escaping, schema validity, determinism."""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import subprocess
from datetime import datetime, timezone

import networkx as nx
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from lineage import __version__
from lineage.errors import LineageError, UnknownFormatError
from lineage.exporters import EXPORTERS, export_graph
from lineage.exporters.flatten import EDGE_FIELDS, NODE_FIELDS, flatten_graph
from lineage.records import Evidence

BASE = "org-a/Base-7B"
INSTRUCT = "org-a/Base-7B-Instruct"
MATH = "org-b/math-7b"
LORA = "user/lora-adapter"
MERGE = "merger/merged-7b"
QUANT = "quant/merged-7b-GGUF"
GHOST = "ghost/deleted-model"
# Raw references of local-path parents are kept as written: they are the hostile ids.
EVIL_DOT = './evil"]; evil [shape=none label="pwn"] // \\'
EVIL_HTML = "<script>alert('x')</script> --> n0{}; #quot; `md` |pipe|"
UNICODE = "local/ünïcødé-模型-🦙 -.-> \\N"

SHA = {
    BASE: "A" * 40,
    INSTRUCT: "b" * 40,
    MATH: "c" * 40,
    LORA: "d" * 40,
    MERGE: "e" * 40,
    QUANT: "f" * 40,
}
HOSTILE_TEXT = 'line one\nline "two" <b>bold</b> & --> ; {x} \x07bell \ud800'


def _evidence(source: str, *, declared: bool = True, detail: str | None = None) -> list[dict]:
    return [
        Evidence(
            source=source,
            file="README.md",
            field="base_model",
            value=BASE,
            declared=declared,
            detail=detail,
        ).to_dict()
    ]


def _node(repo: str, **attrs) -> dict:
    node = {
        "revision": SHA.get(repo),
        "status": "ok",
        "status_reason": None,
        "source": "hub",
        "architecture": "LlamaForCausalLM",
        "model_type": "llama",
        "parameter_count": 7_241_732_096,
        "license": "apache-2.0",
        "relation": None,
        "tags": ["text-generation", "llama"],
        "declared_evaluations": [],
        "created_at": "2024-01-01T00:00:00+00:00",
        "last_modified": "2024-03-01T00:00:00Z",
        "subject": False,
    }
    node.update(attrs)
    return node


def _edge(relation: str, **attrs) -> dict:
    edge = {
        "relation": relation,
        "declared": True,
        "evidence": _evidence("card.base_model"),
        "merge_method": None,
        "weight": None,
        "density": None,
        "t": None,
        "role": None,
        "parent_revision": None,
        "lora": None,
        "parameters": {},
        "confidence": None,
    }
    edge.update(attrs)
    return edge


def lineage_graph(*, reverse: bool = False) -> nx.DiGraph:
    """A realistic family: finetune, adapter, 3-parent merge, quantization, a missing parent,
    a diamond (base -> math -> merge and base -> merge), and hostile names everywhere."""
    evaluation = {
        "task_type": "text-generation",
        "task_name": EVIL_HTML,
        "dataset_type": "gsm8k",
        "dataset_name": "GSM8K",
        "dataset_config": "main",
        "dataset_split": "test",
        "metric_type": "accuracy",
        "metric_name": "Accuracy",
        "metric_value": 0.71,
        "verified": False,
        "source_name": None,
        "source_url": None,
    }
    nodes = {
        BASE: _node(BASE, declared_evaluations=[evaluation], last_modified="2024-06-01T12:00:00Z"),
        INSTRUCT: _node(INSTRUCT, relation="finetune", license="llama3"),
        MATH: _node(MATH, relation="finetune", license="MIT OR <script>"),
        LORA: _node(LORA, relation="adapter", parameter_count=None, architecture=None),
        MERGE: _node(MERGE, relation="merge", subject=True, tags=["merge", "mergekit", EVIL_HTML]),
        QUANT: _node(QUANT, relation="quantized", license=None, tags=[]),
        GHOST: _node(
            GHOST,
            status="missing",
            status_reason="404 on the Hub",
            revision=None,
            architecture=None,
            model_type=None,
            parameter_count=None,
            license=None,
            tags=[],
            created_at=None,
            last_modified=None,
        ),
        EVIL_DOT: _node(
            EVIL_DOT,
            status="error",
            source="local",
            revision=None,
            status_reason=HOSTILE_TEXT,
            license=EVIL_HTML,
            tags=[HOSTILE_TEXT],
        ),
        UNICODE: _node(UNICODE, status="gated", source="local", revision="Ünï\\", license=None),
    }
    edges = {
        (BASE, INSTRUCT): _edge("finetune"),
        (BASE, LORA): _edge("adapter", evidence=_evidence("adapter_config")),
        (BASE, MATH): _edge(
            "finetune",
            declared=False,
            confidence=0.93,
            evidence=_evidence("weights", declared=False, detail="cos 0.98"),
        ),
        (GHOST, MATH): _edge("finetune"),
        (BASE, MERGE): _edge(
            "merge",
            merge_method="ties",
            role="base",
            t=[0.1, 0.5, 0.9],
            parameters={"normalize": True, "int8_mask": True},
        ),
        (INSTRUCT, MERGE): _edge(
            "merge",
            merge_method="ties",
            weight=0.6,
            density=0.5,
            parameters={"weight": 0.6, "density": 0.5},
        ),
        (MATH, MERGE): _edge(
            "merge",
            merge_method="ties",
            weight=0.4,
            density=1,
            parent_revision=SHA[MATH],
            evidence=_evidence(EVIL_HTML),
        ),
        (MERGE, QUANT): _edge("quantized"),
        (EVIL_DOT, LORA): _edge("unknown", declared=False, evidence=_evidence(HOSTILE_TEXT)),
        (UNICODE, QUANT): _edge("unknown", lora=EVIL_DOT),
    }
    graph = nx.DiGraph()
    for node in sorted(nodes, reverse=reverse):
        graph.add_node(node, **nodes[node])
    for edge in sorted(edges, reverse=reverse):
        graph.add_edge(*edge, **edges[edge])
    return graph


@pytest.fixture
def graph() -> nx.DiGraph:
    return lineage_graph()


# ------------------------------------------------------------------------------------ JSON


def test_json_is_the_node_link_contract(graph: nx.DiGraph) -> None:
    text = export_graph(graph, "json")
    data = json.loads(text)

    assert data["directed"] is True and data["multigraph"] is False
    assert data["graph"] == {"generator": f"lineage-audit {__version__}", "subject": MERGE}
    assert [node["id"] for node in data["nodes"]] == sorted(graph.nodes)
    assert [(e["source"], e["target"]) for e in data["edges"]] == sorted(graph.edges)
    for node in data["nodes"]:
        assert set(node) == {"id", *NODE_FIELDS}
        assert node["subject"] is (node["id"] == MERGE)
    for edge in data["edges"]:
        assert set(edge) == {"source", "target", *EDGE_FIELDS}

    nodes = {node["id"]: node for node in data["nodes"]}
    edges = {(e["source"], e["target"]): e for e in data["edges"]}
    assert nodes[GHOST]["revision"] is None and nodes[GHOST]["status"] == "missing"
    assert nodes[EVIL_DOT]["status_reason"] == HOSTILE_TEXT
    assert edges[BASE, MERGE]["t"] == [0.1, 0.5, 0.9] and edges[BASE, MERGE]["role"] == "base"
    assert edges[INSTRUCT, MERGE]["weight"] == 0.6 and edges[MATH, MERGE]["weight"] == 0.4
    assert edges[BASE, MATH]["declared"] is False
    assert edges[BASE, LORA]["evidence"][0]["source"] == "adapter_config"
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"

    back = nx.node_link_graph(data, edges="edges")
    assert set(back.edges) == set(graph.edges)
    assert back.edges[INSTRUCT, MERGE]["merge_method"] == "ties"


def test_json_fills_every_key_of_a_bare_graph() -> None:
    bare = nx.DiGraph([("org/parent", "org/child")])
    data = json.loads(export_graph(bare, "json"))
    assert data["graph"]["subject"] is None
    assert data["nodes"][0] == {
        "id": "org/child",
        **{key: None for key in NODE_FIELDS},
        "tags": [],
        "declared_evaluations": [],
        "subject": False,
    }
    edge = data["edges"][0]
    assert edge["relation"] == "unknown" and edge["evidence"] == [] and edge["weight"] is None


# -------------------------------------------------------------------------- GraphML / GEXF


def _attributes(graph: nx.DiGraph) -> tuple[dict, dict]:
    return dict(graph.nodes(data=True)), {(u, v): d for u, v, d in graph.edges(data=True)}


def test_graphml_round_trips_the_flattened_graph(graph: nx.DiGraph) -> None:
    flat = flatten_graph(graph, MERGE)
    back = nx.read_graphml(
        io.BytesIO(export_graph(graph, "graphml").encode("utf-8")), node_type=str
    )

    # The reader adds the (empty) attribute defaults GraphML keys may declare.
    assert back.graph.pop("node_default") == back.graph.pop("edge_default") == {}
    assert (
        back.graph == flat.graph == {"generator": f"lineage-audit {__version__}", "subject": MERGE}
    )
    assert _attributes(back) == _attributes(flat)
    # The flattening itself: None left out, lists as JSON text, weight renamed, one type each.
    assert "revision" not in flat.nodes[GHOST]
    assert json.loads(flat.edges[BASE, MERGE]["t"]) == [0.1, 0.5, 0.9]
    assert json.loads(flat.edges[INSTRUCT, MERGE]["merge_weight"]) == 0.6
    assert "weight" not in flat.edges[INSTRUCT, MERGE]
    assert json.loads(flat.nodes[MERGE]["tags"]) == ["merge", "mergekit", EVIL_HTML]
    assert flat.nodes[BASE]["parameter_count"] == 7_241_732_096
    assert flat.nodes[EVIL_DOT]["status_reason"] == HOSTILE_TEXT.replace("\x07", "\ufffd").replace(
        "\ud800", "\ufffd"
    )


def test_gexf_round_trips_the_flattened_graph(graph: nx.DiGraph) -> None:
    flat = flatten_graph(graph, MERGE)
    text = export_graph(graph, "gexf")
    back = nx.read_gexf(io.BytesIO(text.encode("utf-8")), node_type=str)

    # GEXF requires a node label and an edge id: the label is the repo id, the edge ids
    # count edges; the reader reports both as attributes on top of the flattened graph.
    for node, attrs in back.nodes(data=True):
        assert attrs.pop("label") == node
    edge_ids = sorted(int(attrs.pop("id")) for _, _, attrs in back.edges(data=True))
    assert edge_ids == list(range(graph.number_of_edges()))
    assert _attributes(back) == _attributes(flat)
    assert 'lastmodifieddate="2024-06-01"' in text


def test_flatten_gives_each_attribute_one_type_and_no_reserved_names() -> None:
    graph = nx.DiGraph()
    graph.add_node("a/x", score=1, note="text", label="shown", extra=None)
    graph.add_node("a/y", score=0.5, note=3)
    graph.add_edge("a/x", "a/y", weight=1, id="e1")
    flat = flatten_graph(graph, None)

    assert flat.nodes["a/x"]["score"] == 1.0 and isinstance(flat.nodes["a/x"]["score"], float)
    assert (flat.nodes["a/x"]["note"], flat.nodes["a/y"]["note"]) == ('"text"', "3")
    assert flat.nodes["a/x"]["attr_label"] == "shown" and "extra" not in flat.nodes["a/x"]
    assert flat.edges["a/x", "a/y"]["merge_weight"] == "1"
    assert flat.edges["a/x", "a/y"]["attr_id"] == "e1"
    back = nx.read_gexf(io.BytesIO(export_graph(graph, "gexf").encode("utf-8")), node_type=str)
    assert back.nodes["a/y"] == {**flat.nodes["a/y"], "label": "a/y"}


# ------------------------------------------------------------------------------------- DOT

_DOT_ATTRIBUTES = {
    "rankdir",
    "fontname",
    "labelloc",
    "label",
    "shape",
    "style",
    "fillcolor",
    "fontsize",
    "color",
    "fontcolor",
    "tooltip",
    "penwidth",
}


def _dot_tokens(text: str) -> list[tuple[str, str]]:
    """Tokens as Graphviz's scanner reads them: in a quoted string ``\\"`` and ``\\\\`` are
    pairs; anything that escapes a string shows up as a bare token."""
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
        elif text.startswith("//", i):
            i = text.index("\n", i)
        elif text[i] == '"':
            j, raw = i + 1, []
            while text[j] != '"':
                assert text[j] != "\n", "raw line break inside a DOT string"
                step = 2 if text[j] == "\\" and text[j + 1] in '"\\' else 1
                raw.append(text[j : j + step])
                j += step
            tokens.append(("string", "".join(raw)))
            i = j + 1
        elif text.startswith("->", i):
            tokens.append(("op", "->"))
            i += 2
        elif text[i] in "{}[]=,;":
            tokens.append(("op", text[i]))
            i += 1
        else:
            word = re.match(r"[A-Za-z_][A-Za-z_0-9]*|\d+(?:\.\d+)?", text[i:])
            assert word, f"unexpected DOT text at {text[i : i + 20]!r}"
            tokens.append(("id", word.group()))
            i += len(word.group())
    return tokens


def _dot_unescape(raw: str) -> str:
    escapes = {'"': '"', "\\": "\\", "n": "\n"}
    return re.sub(r"\\(.)", lambda m: escapes[m.group(1)], raw)


def _dot_statements(text: str) -> tuple[dict, dict]:
    tokens = _dot_tokens(text)
    assert tokens[:3] == [("id", "digraph"), ("id", "lineage"), ("op", "{")]
    assert tokens[-1] == ("op", "}")
    nodes, edges, i = {}, {}, 3
    while i < len(tokens) - 1:
        kind, value = tokens[i]
        if kind == "id":
            assert value in {"graph", "node", "edge"}
            target, i = None, i + 1
        elif tokens[i + 1] == ("op", "->"):
            assert tokens[i + 2][0] == "string"
            target = (_dot_unescape(value), _dot_unescape(tokens[i + 2][1]))
            i += 3
        else:
            target, i = _dot_unescape(value), i + 1
        assert tokens[i] == ("op", "[")
        attrs, i = {}, i + 1
        while tokens[i] != ("op", "]"):
            (name_kind, name), equals, (_, attr_value) = tokens[i : i + 3]
            assert name_kind == "id" and name in _DOT_ATTRIBUTES and equals == ("op", "=")
            attrs[name] = _dot_unescape(attr_value)
            i += 3
            if tokens[i] == ("op", ","):
                i += 1
        assert tokens[i + 1] == ("op", ";")
        i += 2
        if isinstance(target, tuple):
            edges[target] = attrs
        elif target is not None:
            nodes[target] = attrs
    return nodes, edges


def test_dot_escapes_hostile_ids_and_labels(graph: nx.DiGraph) -> None:
    text = export_graph(graph, "dot")
    nodes, edges = _dot_statements(text)

    assert set(nodes) == set(graph.nodes)
    assert set(edges) == set(graph.edges)
    assert nodes[EVIL_DOT]["label"].startswith(EVIL_DOT + "\n")
    assert nodes[UNICODE]["label"].startswith(UNICODE + "\n")
    assert "\\N" not in nodes[UNICODE]["label"].replace(UNICODE, "")
    assert nodes[BASE]["label"] == f"{BASE}\nAAAAAAA · ok"
    assert nodes[GHOST]["label"] == f"{GHOST}\nno revision · missing"
    assert "dashed" in nodes[GHOST]["style"] and "penwidth" in nodes[MERGE]
    assert edges[INSTRUCT, MERGE]["label"] == "merge (ties)\nweight=0.6 density=0.5"
    assert edges[BASE, MERGE]["label"] == "merge (ties), base\nt=[0.1, 0.5, 0.9]"
    assert edges[BASE, MATH]["style"] == "dashed"
    assert edges[BASE, MATH]["label"].endswith("inferred, confidence 0.93")
    assert "style" not in edges[BASE, INSTRUCT]
    assert ("\x07" not in text) and ("\ud800" not in text)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_dot_is_accepted_by_graphviz(graph: nx.DiGraph) -> None:
    result = subprocess.run(
        ["dot", "-Tjson"],
        input=export_graph(graph, "dot").encode("utf-8"),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    drawn = json.loads(result.stdout)
    assert len(drawn["objects"]) == graph.number_of_nodes()
    assert len(drawn["edges"]) == graph.number_of_edges()


# --------------------------------------------------------------------------------- Mermaid

_MERMAID_LINES = {
    "node": re.compile(r'^  (n\d+)\["([^"<>`\n|]*)"\]$'),
    "edge": re.compile(r'^  (n\d+) (-->|-\.->)\|"([^"<>`\n|]*)"\| (n\d+)$'),
    "classDef": re.compile(r"^  classDef [a-z]+ [a-z0-9:#,. -]+;$"),
    "class": re.compile(r"^  class n\d+(,n\d+)* [a-z]+;$"),
}


def _mermaid_unescape(text: str) -> str:
    def entity(match: re.Match) -> str:
        code = match.group(1)
        return html.unescape(f"&#{code};" if code.isdigit() else f"&{code};")

    return re.sub(r"#(\w+);", entity, text)


def test_mermaid_escapes_hostile_labels(graph: nx.DiGraph) -> None:
    text = export_graph(graph, "mermaid")
    lines = text.splitlines()
    assert lines[:2] == [f"%% lineage-audit {__version__}", "flowchart TD"]
    assert "<" not in text and ">" not in text.replace("-->", "").replace("-.->", "")

    labels, arrows = {}, {}
    for line in lines[2:]:
        kinds = [kind for kind, pattern in _MERMAID_LINES.items() if pattern.match(line)]
        assert len(kinds) == 1, f"line outside the grammar: {line!r}"
        match = _MERMAID_LINES[kinds[0]].match(line)
        if kinds[0] == "node":
            labels[match.group(1)] = _mermaid_unescape(match.group(2))
        elif kinds[0] == "edge":
            arrows[match.group(1), match.group(4)] = (
                match.group(2),
                _mermaid_unescape(match.group(3)),
            )

    ids = {node: f"n{index}" for index, node in enumerate(sorted(graph.nodes))}
    assert set(labels) == set(ids.values())
    for node, node_id in ids.items():
        assert labels[node_id].startswith(node + " · "), labels[node_id]
    assert set(arrows) == {(ids[u], ids[v]) for u, v in graph.edges}
    assert arrows[ids[BASE], ids[MATH]][0] == "-.->"
    assert arrows[ids[INSTRUCT], ids[MERGE]] == ("-->", "merge (ties) · weight=0.6 density=0.5")
    assert f"  class {ids[GHOST]} missing;" in lines
    assert f"  class {ids[MERGE]} subject;" in lines


# ------------------------------------------------------------------------------- CycloneDX


def _properties(component: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for prop in component.get("properties", []):
        found.setdefault(prop["name"], []).append(prop["value"])
    return found


def test_cyclonedx_is_a_valid_1_6_bom_with_pedigree_and_dependencies(graph) -> None:
    text = export_graph(graph, "cyclonedx")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)

    assert bom["specVersion"] == "1.6"
    subject = bom["metadata"]["component"]
    assert subject["bom-ref"] == f"{MERGE}@{SHA[MERGE]}"
    components = {c["name"]: c for c in [subject, *bom["components"]]}
    assert set(components) == set(graph.nodes)
    assert all(c["type"] == "machine-learning-model" for c in components.values())

    refs = {name: c["bom-ref"] for name, c in components.items()}
    assert refs[GHOST] == GHOST and refs[BASE] == f"{BASE}@{SHA[BASE]}"
    assert components[BASE]["purl"] == f"pkg:huggingface/org-a/Base-7B@{'a' * 40}"
    assert components[GHOST]["purl"] == "pkg:huggingface/ghost/deleted-model"
    assert "purl" not in components[EVIL_DOT] and "purl" not in components[UNICODE]

    dependencies = {d["ref"]: set(d.get("dependsOn", [])) for d in bom["dependencies"]}
    assert set(dependencies) == set(refs.values())
    for name, ref in refs.items():
        parents = set(graph.predecessors(name))
        assert dependencies[ref] == {refs[parent] for parent in parents}
        ancestors = components[name].get("pedigree", {}).get("ancestors", [])
        assert {a["name"] for a in ancestors} == parents
        for ancestor in ancestors:
            assert "bom-ref" not in ancestor
            assert ancestor.get("purl") == components[ancestor["name"]].get("purl")
            edge = graph.edges[ancestor["name"], name]
            assert _properties(ancestor)["lineage:relation"] == [edge["relation"]]

    merge_parents = {a["name"]: _properties(a) for a in subject["pedigree"]["ancestors"]}
    assert merge_parents[INSTRUCT]["lineage:weight"] == ["0.6"]
    assert merge_parents[BASE]["lineage:t"] == ["[0.1,0.5,0.9]"]
    assert merge_parents[BASE]["lineage:role"] == ["base"]
    assert merge_parents[BASE]["lineage:merge_method"] == ["ties"]
    evidence = json.loads(merge_parents[MATH]["lineage:evidence"][0])
    assert evidence["source"] == EVIL_HTML
    assert _properties(components[GHOST])["lineage:status"] == ["missing"]

    assert subject["tags"] == sorted(graph.nodes[MERGE]["tags"])
    assert components[BASE]["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert components[INSTRUCT]["licenses"] == [{"license": {"name": "llama3"}}]
    assert components[EVIL_DOT]["licenses"] == [{"license": {"name": EVIL_HTML}}]
    card = components[BASE]["modelCard"]
    assert card["modelParameters"] == {
        "architectureFamily": "llama",
        "modelArchitecture": "LlamaForCausalLM",
    }
    assert card["quantitativeAnalysis"]["performanceMetrics"][0]["value"] == "0.71"


def test_cyclonedx_serial_and_timestamp_come_from_content(graph, monkeypatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    bom = json.loads(export_graph(graph, "cyclonedx"))
    assert datetime.fromisoformat(bom["metadata"]["timestamp"]) == datetime(
        2024, 6, 1, 12, tzinfo=timezone.utc
    )
    graph.nodes[QUANT]["status"] = "gated"
    assert json.loads(export_graph(graph, "cyclonedx"))["serialNumber"] != bom["serialNumber"]

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    stamped = json.loads(export_graph(graph, "cyclonedx"))
    assert datetime.fromisoformat(stamped["metadata"]["timestamp"]) == datetime.fromtimestamp(
        1_700_000_000, tz=timezone.utc
    )
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(LineageError, match="SOURCE_DATE_EPOCH"):
        export_graph(graph, "cyclonedx")


def test_cyclonedx_without_a_subject_is_still_valid() -> None:
    graph = lineage_graph()
    graph.nodes[MERGE]["subject"] = False
    text = export_graph(graph, "cyclonedx")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    assert "component" not in bom["metadata"]
    assert len(bom["components"]) == graph.number_of_nodes()


# ------------------------------------------------------------------------ registry, errors


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_every_exporter_is_deterministic_and_order_independent(fmt: str, monkeypatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first = export_graph(lineage_graph(), fmt)
    assert export_graph(lineage_graph(), fmt) == first
    assert export_graph(lineage_graph(reverse=True), fmt) == first
    exporter = EXPORTERS[fmt]
    assert exporter.name == fmt and exporter.suffix.startswith(".") and exporter.media_type
    assert exporter.render(lineage_graph(), subject=MERGE) == first


def test_explicit_subject_overrides_the_flag(graph: nx.DiGraph) -> None:
    data = json.loads(export_graph(graph, "json", subject=BASE))
    assert data["graph"]["subject"] == BASE
    assert [node["id"] for node in data["nodes"] if node["subject"]] == [BASE]
    with pytest.raises(LineageError, match="not a node"):
        export_graph(graph, "json", subject="org/elsewhere")


def test_unknown_format_names_it_and_lists_the_known_ones(graph: nx.DiGraph) -> None:
    with pytest.raises(UnknownFormatError) as caught:
        export_graph(graph, "yaml")
    message = str(caught.value)
    assert "'yaml'" in message and "\n" not in message
    for name in EXPORTERS:
        assert name in message
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, LineageError)
