"""Run one coverage-guided fuzz target (atheris/libFuzzer) for a bounded time.

``make fuzz`` calls this once per target of ``fuzz/targets.py``:
``python fuzz/run.py TARGET SECONDS``. Seeds come from ``fuzz/seeds.py`` (real examples of each
format, so the fuzzer starts inside the grammar); the corpus it grows is kept in
``fuzz/corpus/TARGET`` between runs (git-ignored) and a crash is written to
``fuzz/crashes/TARGET-…`` for ``tests/property/test_fuzz_regressions.py`` to replay. The
summary line (executions, crashes) goes to stdout for ``bench/results/fuzz.md``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    import atheris

    name, seconds = sys.argv[1], int(sys.argv[2])
    with atheris.instrument_imports(include=["keyfob"]):
        import targets
    import seeds

    target = targets.TARGETS[name]
    corpus = HERE / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(seeds.SEEDS.get(name, ())):
        (corpus / f"seed-{i}").write_bytes(seed)
    crashes = HERE / "crashes"
    crashes.mkdir(exist_ok=True)
    args = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={seconds}",
        f"-artifact_prefix={crashes}/{name}-",
        "-max_len=4096",
        "-timeout=10",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
    ]
    os.environ.setdefault("PYTHONHASHSEED", "0")
    atheris.Setup(args, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
