"""The streamed linear merge against ``mergekit-yaml``: wall-clock time and peak RSS.

Two Llama-shaped checkpoints with the same tensor names and shapes are built in a temporary
folder (``--size-mb`` each, default 600 MB, in ``--dtype``, default BF16), each split into
``--shards`` safetensors shards (default 5) in model order with a
``model.safetensors.index.json`` and a ``config.json`` (``LlamaForCausalLM``, ``llama``).
They are written shard by shard with ``safetensors.torch.save_file``, so building holds one
shard at a time. The values are random (seeded), not sparse: a merge reads and writes every
byte, and a hole would read back as zero pages and flatter both tools' reading; 2 × 600 MB of
real data costs little disk.

Then θ(λ) = (1−λ)·θ_aligned + λ·θ_finetune (``--lam``, default 0.3) is merged twice, each in a
fresh subprocess of the same Python, timed wall-clock from the parent:
- ours: ``lineage.remediate.merge.merge_linear(aligned, finetune, λ, out)``;
- mergekit: ``mergekit-yaml`` (its ``main``, run as ``python -c`` so that no pyenv shim or
  console-script wrapper is timed) on ``models: [{aligned, weight 1−λ}, {finetune, weight λ}]``,
  ``merge_method: linear``, ``dtype`` as the inputs, with ``--no-copy-tokenizer`` (the inputs
  have none) and ``--out-shard-size`` set to the largest input shard's size, so that it too
  writes (and holds) one input-sized shard at a time rather than its 5B default (one shard for
  the whole model). ``--lazy-unpickle`` is left off: it only concerns pickled ``.bin`` weights.
Peak RSS is the child's maximum resident set size, read from ``/usr/bin/time -v`` when it is
there, else printed by the child itself (``getrusage(RUSAGE_SELF).ru_maxrss``) as it ends.
Both children import torch, which alone is about 225 MB of RSS.

The two outputs are compared tensor by tensor (cast to float32): the largest absolute
difference must be ≤ 1e-6. Printed: input sizes, largest shard, time and peak RSS of each,
the time ratio (ours / mergekit) and our peak RSS against the target of 2 × the largest shard
+ 200 MB. Targets: time ≤ 1.0× mergekit's; peak RSS within that bound. MB here is 10^6 bytes.

    python benchmarks/merge.py [--size-mb 600] [--shards 5] [--lam 0.3] [--dtype BF16|F16]
        [--repeats 1] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

REPO_ROOT = Path(__file__).resolve().parent.parent
TORCH_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16}
CONFIG_DTYPES = {"BF16": "bfloat16", "F16": "float16"}
INDEX_NAME = "model.safetensors.index.json"
TIME_BIN = Path("/usr/bin/time")
MAXRSS_MARK = "__benchmark_maxrss_kb__"
TOLERANCE = 1e-6
MB = 10**6


# ----------------------------------------------------------------------------- the inputs


@dataclass(frozen=True)
class LlamaLayout:
    vocab: int
    hidden: int
    intermediate: int
    layers: int
    heads: int

    def tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        """Every tensor in the model's (state_dict) order, the order shards are filled in."""
        h, i = self.hidden, self.intermediate
        out: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (self.vocab, h))]
        for n in range(self.layers):
            prefix = f"model.layers.{n}"
            out += [(f"{prefix}.self_attn.{p}_proj.weight", (h, h)) for p in "qkvo"]
            out += [
                (f"{prefix}.mlp.gate_proj.weight", (i, h)),
                (f"{prefix}.mlp.up_proj.weight", (i, h)),
                (f"{prefix}.mlp.down_proj.weight", (h, i)),
                (f"{prefix}.input_layernorm.weight", (h,)),
                (f"{prefix}.post_attention_layernorm.weight", (h,)),
            ]
        out += [("model.norm.weight", (h,)), ("lm_head.weight", (self.vocab, h))]
        return out

    def config(self, dtype: str) -> dict:
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab,
            "hidden_size": self.hidden,
            "intermediate_size": self.intermediate,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.heads,
            "max_position_embeddings": 2048,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
            "torch_dtype": CONFIG_DTYPES[dtype],
        }


def layout_for(size_mb: float, dtype: str) -> LlamaLayout:
    """A 1024-wide Llama with as many layers as it takes to reach ``size_mb``."""
    base = LlamaLayout(vocab=32000, hidden=1024, intermediate=2816, layers=0, heads=16)
    width = torch.finfo(TORCH_DTYPES[dtype]).bits // 8
    fixed = sum(math.prod(shape) for _, shape in base.tensors()) * width
    h, i = base.hidden, base.intermediate
    per_layer = (4 * h * h + 3 * h * i + 2 * h) * width
    layers = max(1, math.ceil((size_mb * MB - fixed) / per_layer))
    return LlamaLayout(base.vocab, base.hidden, base.intermediate, layers, base.heads)


def split(layout: LlamaLayout, shards: int, width: int) -> list[list[tuple[str, tuple]]]:
    """Exactly ``shards`` shards in model order, each starting near a 1/shards boundary."""
    tensors = layout.tensors()
    total = sum(math.prod(shape) for _, shape in tensors) * width
    out: list[list[tuple[str, tuple]]] = [[] for _ in range(shards)]
    start = 0
    for name, shape in tensors:
        out[min(shards - 1, start * shards // total)].append((name, shape))
        start += math.prod(shape) * width
    if any(not part for part in out):
        raise SystemExit(f"cannot split {len(tensors)} tensors into {shards} shards")
    return out


def write_checkpoint(folder: Path, layout: LlamaLayout, dtype: str, shards: int, seed: int):
    """Random weights, one shard in memory at a time; returns the shard sizes in bytes."""
    folder.mkdir(parents=True)
    torch_dtype = TORCH_DTYPES[dtype]
    width = torch.finfo(torch_dtype).bits // 8
    parts = split(layout, shards, width)
    generator = torch.Generator().manual_seed(seed)
    weight_map: dict[str, str] = {}
    sizes = []
    total = 0
    for number, part in enumerate(parts, start=1):
        name = f"model-{number:05d}-of-{len(parts):05d}.safetensors"
        tensors = {
            tensor: (torch.randn(shape, generator=generator) * 0.02).to(torch_dtype)
            for tensor, shape in part
        }
        save_file(tensors, str(folder / name), metadata={"format": "pt"})
        total += sum(t.numel() * width for t in tensors.values())
        del tensors
        weight_map.update(dict.fromkeys((tensor for tensor, _ in part), name))
        sizes.append((folder / name).stat().st_size)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")
    (folder / "config.json").write_text(json.dumps(layout.config(dtype), indent=2) + "\n")
    return sizes


# ----------------------------------------------------------------------------- the runs


OURS = """\
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from lineage.remediate.merge import merge_linear
merge_linear(Path({aligned!r}), Path({finetune!r}), {lam!r}, Path({out!r}))
"""

MERGEKIT = """\
import sys
from mergekit.scripts.run_yaml import main
sys.argv = ["mergekit-yaml", *{args!r}]
main()
"""

# The fallback when /usr/bin/time is missing: the child reports its own peak RSS as it ends.
SELF_REPORT = """\
import resource, sys
try:
{body}
finally:
    print({mark!r}, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss: int  # bytes


def run_child(code: str, label: str) -> Run:
    if TIME_BIN.exists():
        command = [str(TIME_BIN), "-v", sys.executable, "-c", code]
    else:
        body = "\n".join("    " + line for line in code.splitlines())
        command = [sys.executable, "-c", SELF_REPORT.format(body=body, mark=MAXRSS_MARK)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"{label} failed (exit {done.returncode})")
    if TIME_BIN.exists():
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    else:
        found = re.search(rf"{MAXRSS_MARK} (\d+)", done.stderr)
    if found is None:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{label}: no peak RSS in its output")
    return Run(seconds=seconds, peak_rss=int(found.group(1)) * 1024)


def run_ours(aligned: Path, finetune: Path, lam: float, out: Path) -> Run:
    code = OURS.format(
        root=str(REPO_ROOT), aligned=str(aligned), finetune=str(finetune), lam=lam, out=str(out)
    )
    return run_child(code, "merge_linear")


def run_mergekit(
    aligned: Path, finetune: Path, lam: float, out: Path, dtype: str, shard_bytes: int
) -> Run:
    config = {
        "models": [
            {"model": str(aligned), "parameters": {"weight": 1.0 - lam}},
            {"model": str(finetune), "parameters": {"weight": lam}},
        ],
        "merge_method": "linear",
        "dtype": CONFIG_DTYPES[dtype],
    }
    config_path = out.parent / f"{out.name}.yml"
    config_path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
    args = [
        str(config_path),
        str(out),
        "--no-copy-tokenizer",
        "--out-shard-size",
        str(shard_bytes),
        "--quiet",
    ]
    return run_child(MERGEKIT.format(args=args), "mergekit-yaml")


# ----------------------------------------------------------------------------- checking


def weight_map(folder: Path) -> dict[str, str]:
    index = folder / INDEX_NAME
    if index.exists():
        return json.loads(index.read_text())["weight_map"]
    return {}


def max_difference(ours: Path, theirs: Path) -> tuple[float, int, str]:
    """(largest |ours − theirs| over all tensors, tensors compared, worst tensor)."""
    ours_map, theirs_map = weight_map(ours), weight_map(theirs)
    if set(ours_map) != set(theirs_map):
        missing = sorted(set(ours_map) ^ set(theirs_map))[:3]
        raise SystemExit(f"the two merges hold different tensors, e.g. {missing}")
    worst, worst_name = 0.0, ""
    handles: dict[Path, object] = {}
    try:
        for name, shard in ours_map.items():
            pair = []
            for path in (ours / shard, theirs / theirs_map[name]):
                if path not in handles:
                    handles[path] = safe_open(str(path), framework="pt").__enter__()
                pair.append(handles[path].get_tensor(name))
            if pair[0].dtype != pair[1].dtype or pair[0].shape != pair[1].shape:
                raise SystemExit(f"{name}: {pair[0].dtype} {pair[0].shape} vs {pair[1].dtype}")
            diff = (pair[0].float() - pair[1].float()).abs().max().item()
            if diff > worst or not worst_name:
                worst, worst_name = diff, name
    finally:
        for handle in handles.values():
            handle.__exit__(None, None, None)
    return worst, len(ours_map), worst_name


# ----------------------------------------------------------------------------- main


def mb(count: float) -> str:
    return f"{count / MB:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=600, help="each input (default 600)")
    parser.add_argument("--shards", type=int, default=5)
    parser.add_argument("--lam", type=float, default=0.3, help="the fine-tune's share")
    parser.add_argument("--dtype", choices=sorted(TORCH_DTYPES), default="BF16")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each, alternating")
    parser.add_argument("--workdir", type=Path, help="build here (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the inputs and outputs")
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="merge-bench-", dir=args.workdir))
    started = time.perf_counter()
    try:
        layout = layout_for(args.size_mb, args.dtype)
        aligned, finetune = work / "aligned", work / "finetune"
        building = time.perf_counter()
        al_sizes = write_checkpoint(aligned, layout, args.dtype, args.shards, seed=1)
        ft_sizes = write_checkpoint(finetune, layout, args.dtype, args.shards, seed=2)
        largest = max(al_sizes + ft_sizes)
        print(
            f"inputs: 2 Llama-shaped checkpoints (hidden {layout.hidden}, "
            f"{layout.layers} layers, vocab {layout.vocab}, {args.dtype}), "
            f"{mb(sum(al_sizes))} + {mb(sum(ft_sizes))} in {len(ft_sizes)} shards each; "
            f"largest shard {mb(largest)}; random values; built in "
            f"{time.perf_counter() - building:.1f} s in {work}"
        )
        print(
            f"merge: linear, lambda {args.lam} (fine-tune share); peak RSS from "
            f"{'/usr/bin/time -v' if TIME_BIN.exists() else 'the child getrusage'}"
        )

        ours_runs: list[Run] = []
        theirs_runs: list[Run] = []
        for repeat in range(args.repeats):
            ours_out, theirs_out = work / f"ours-{repeat}", work / f"mergekit-{repeat}"
            order = ["ours", "mergekit"] if repeat % 2 else ["mergekit", "ours"]
            for which in order:
                if which == "ours":
                    run = run_ours(aligned, finetune, args.lam, ours_out)
                    ours_runs.append(run)
                else:
                    run = run_mergekit(aligned, finetune, args.lam, theirs_out, args.dtype, largest)
                    theirs_runs.append(run)
                print(
                    f"  run {repeat + 1} {which:<8} {run.seconds:6.2f} s  "
                    f"peak RSS {mb(run.peak_rss)}"
                )
            worst, count, worst_name = max_difference(ours_out, theirs_out)
            verdict = "equal" if worst <= TOLERANCE else "DIFFERENT"
            print(
                f"  outputs {verdict}: max |ours - mergekit| = {worst:.3g} over {count} tensors "
                f"(float32; worst {worst_name}; tolerance {TOLERANCE:g})"
            )
            if repeat + 1 < args.repeats and not args.keep:
                shutil.rmtree(ours_out)
                shutil.rmtree(theirs_out)

        ours_time = min(run.seconds for run in ours_runs)
        theirs_time = min(run.seconds for run in theirs_runs)
        ours_rss = max(run.peak_rss for run in ours_runs)
        theirs_rss = max(run.peak_rss for run in theirs_runs)
        target_rss = 2 * largest + 200 * MB
        best = "best of" if args.repeats > 1 else "of"
        print(f"\n== results ({best} {args.repeats} run(s); peak RSS: the largest) ==")
        print(f"{'':<10} {'time':>9} {'peak RSS':>10}")
        print(f"{'ours':<10} {ours_time:>7.2f} s {mb(ours_rss):>10}")
        print(f"{'mergekit':<10} {theirs_time:>7.2f} s {mb(theirs_rss):>10}")
        time_ratio = ours_time / theirs_time
        print(
            f"time ratio ours/mergekit: {time_ratio:.2f}x (target <= 1.0x: "
            f"{'met' if time_ratio <= 1.0 else 'MISSED'})"
        )
        print(f"peak RSS ratio ours/mergekit: {ours_rss / theirs_rss:.2f}x")
        print(
            f"our peak RSS {mb(ours_rss)} against 2 x largest shard + 200 MB = "
            f"{mb(target_rss)}: {'met' if ours_rss <= target_rss else 'MISSED'} "
            f"({(ours_rss - target_rss) / MB:+,.0f} MB)"
        )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"total benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
