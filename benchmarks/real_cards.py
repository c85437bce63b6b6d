"""How well the crawler reads real, published model repos: parents, relation, recipe.

Reads every folder of ``tests/data/real/models/`` (cards, configs and file listings copied
byte for byte from public mirrors of Hub repos, see SOURCES.md there) as the local source
does, and compares what it finds with the hand-made truth in ``EXPECTED.yaml``:

- recall: declared parents found, among those a program can read from the files;
- precision: parents found that are right (a parent the files do not support is wrong);
- relation accuracy: finetune / adapter / merge / quantized, as the truth says;
- method and parameters: the final recipe's merge method, each parent's declared parameters;
- candidates: local folders mapped to the Hub repo the truth names (reported, no target);
- silent misreads: models read wrongly with no warning at all (target: none).

Targets: recall >= 0.95, precision >= 0.97, relation >= 0.95, method and parameters >= 0.95.

    python benchmarks/real_cards.py [--verbose]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testkit.real_corpus import TARGETS, evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="list every model read wrongly")
    verbose = parser.parse_args().verbose
    corpus = evaluate()
    for result in corpus.scores:
        if verbose and not result.perfect:
            print(
                f"- {result.folder}: missed {result.missed} wrong {result.wrong} {result.problems}"
            )
            for warning in corpus.warnings[result.folder][:4]:
                print(f"    warning: {warning[:160]}")
    print(
        f"real model repos: {len(corpus.scores)}, parents in the truth: "
        f"{sum(s.truth_parents for s in corpus.scores)}"
    )
    for name, value in corpus.figures.items():
        target = TARGETS.get(name)
        if target is None:
            print(f"{name:>10}: {value:.3f}")
            continue
        mark = "ok" if value >= target else "BELOW TARGET"
        print(f"{name:>10}: {value:.3f} (target >= {target:.2f}) {mark}")
    print(f"silent misreads: {len(corpus.silent)} {corpus.silent or ''}".rstrip())
    raise SystemExit(0 if corpus.met else 1)


if __name__ == "__main__":
    main()
