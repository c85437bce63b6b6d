"""Generation throughput: the auditor's batched greedy decoding vs a per-prompt loop.

Both run in one process on the same model and prompts: a small Llama (random weights,
word-level tokenizer, chat template) built on the fly, and the built-in harmful suite's
prompts formatted with the chat template. The batched path is ``audit.generation.generate``
(left-padded batches, longest first); the baseline calls ``model.generate`` once per prompt,
as a naive evaluation loop does. Greedy outputs must be identical, so the ratio compares
equal work. Prints tokens/s of each and the ratio (target >= 8x on the CI CPU).

With ``--backend vllm`` (where vLLM is installed) the comparison is vLLM's engine, given the
whole suite at once, against the batched transformers path above, on the same model and
prompts; by default a model large enough for the comparison to mean something on a CPU
(hidden 1024, 8 layers, 16 heads of 64). Tokens are counted by re-tokenizing the answers,
the same count for both paths when their answers are identical (checked and printed).

    python benchmarks/generation.py [--prompts 110] [--batch-size 32] [--max-new-tokens 32]
                                    [--device auto] [--hidden 64] [--layers 2] [--repeats 3]
                                    [--backend transformers|vllm] [--heads 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.generation import (
    GenerationSettings,
    LoadedModel,
    format_prompts,
    generate,
    load_model,
    resolve_chat_format,
)
from audit.suites import load_suite
from testkit.chat_models import save_chat_model


def per_prompt_loop(
    loaded: LoadedModel, texts: list[str], max_new_tokens: int
) -> tuple[list[str], int]:
    """The baseline: one ``generate`` call per prompt, no padding, no batching.

    Returns the answers and the number of tokens generated (up to and including EOS)."""
    tokenizer, answers, tokens = loaded.tokenizer, [], 0
    for text in texts:
        encoded = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(loaded.device)
        with torch.inference_mode():
            output = loaded.model.generate(
                **encoded,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = output[0, encoded["input_ids"].shape[1] :]
        tokens += int(new.numel())
        answers.append(tokenizer.decode(new, skip_special_tokens=True).strip())
    return answers, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=110)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", choices=("transformers", "vllm"), default="transformers")
    parser.add_argument("--heads", type=int, default=None)
    args = parser.parse_args()
    if args.backend == "vllm":
        compare_vllm(args)
        return

    torch.set_num_threads(max(1, torch.get_num_threads()))
    prompts = [p.prompt for p in load_suite("harmful").prompts][: args.prompts]
    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, device=args.device
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_chat_model(
            Path(tmp) / "model", seed=0, layers=args.layers, hidden=args.hidden
        )
        loaded = load_model(folder, settings, label="bench/model")
    chat = resolve_chat_format(loaded.tokenizer)
    texts = format_prompts(loaded.tokenizer, chat, prompts, None)
    parameters = sum(p.numel() for p in loaded.model.parameters())
    print(
        f"model: Llama {parameters / 1e6:.1f}M parameters on {loaded.device} ({loaded.dtype}),"
        f" {len(texts)} prompts, {args.max_new_tokens} new tokens, batch {args.batch_size}"
    )

    generate(loaded, texts[:2], settings)  # warm-up: kernels, allocator
    # Best of --repeats for each path, alternating: a shared machine's noise hits both alike.
    batched_s = looped_s = float("inf")
    for _ in range(args.repeats):
        started = time.perf_counter()
        batched = generate(loaded, texts, settings)
        batched_s = min(batched_s, time.perf_counter() - started)
        started = time.perf_counter()
        looped, tokens = per_prompt_loop(loaded, texts, args.max_new_tokens)
        looped_s = min(looped_s, time.perf_counter() - started)

    # Greedy outputs are identical (checked below), so both paths produced ``tokens``.
    same = sum(a == b for a, b in zip(batched, looped, strict=True))
    print(f"batched:    {batched_s:7.2f} s = {tokens / batched_s:9.1f} tokens/s")
    print(f"per prompt: {looped_s:7.2f} s = {tokens / looped_s:9.1f} tokens/s")
    print(f"identical greedy outputs: {same}/{len(texts)}")
    print(f"speed-up of batched over per-prompt: {looped_s / batched_s:.1f}x (target >= 8x)")


def compare_vllm(args: argparse.Namespace) -> None:
    """vLLM (whole suite at once) against the batched transformers path, side by side."""
    from audit.backends import resolve_backend

    hidden = args.hidden if args.hidden != 64 else 1024
    layers = args.layers if args.layers != 2 else 8
    heads = args.heads or hidden // 64
    prompts = [p.prompt for p in load_suite("harmful").prompts][: args.prompts]
    paths = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_chat_model(
            Path(tmp) / "model", seed=0, layers=layers, hidden=hidden, heads=heads
        )
        for name in ("transformers", "vllm"):
            settings = GenerationSettings(
                max_new_tokens=args.max_new_tokens,
                batch_size=args.batch_size,
                device=args.device,
                backend=name,
            )
            backend = resolve_backend(name)
            started = time.perf_counter()
            loaded = backend.load(folder, settings, label="bench/model")
            load_s = time.perf_counter() - started
            chat = resolve_chat_format(loaded.tokenizer)
            texts = format_prompts(loaded.tokenizer, chat, prompts, None)
            backend.generate(loaded, texts[:2], settings)  # warm-up
            best = float("inf")
            for _ in range(args.repeats):
                started = time.perf_counter()
                answers = backend.generate(loaded, texts, settings)
                best = min(best, time.perf_counter() - started)
            tokens = sum(
                len(loaded.tokenizer(a, add_special_tokens=False).input_ids) for a in answers
            )
            paths[name] = (best, tokens, answers, load_s)
            del loaded
    print(
        f"model: Llama hidden {hidden}, {layers} layers, {heads} heads of {hidden // heads},"
        f" {len(prompts)} prompts, {args.max_new_tokens} new tokens, device {args.device}"
    )
    for name, (seconds, tokens, _, load_s) in paths.items():
        print(
            f"{name:<12} {seconds:7.2f} s = {tokens / seconds:9.1f} tokens/s"
            f"  (loading {load_s:.1f} s, not counted)"
        )
    same = sum(a == b for a, b in zip(paths["vllm"][2], paths["transformers"][2], strict=True))
    print(f"identical greedy outputs: {same}/{len(prompts)}")
    hf_rate = paths["transformers"][1] / paths["transformers"][0]
    vllm_rate = paths["vllm"][1] / paths["vllm"][0]
    print(f"vLLM / transformers tokens/s: {vllm_rate / hf_rate:.2f}x")


if __name__ == "__main__":
    main()
