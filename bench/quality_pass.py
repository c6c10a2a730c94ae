"""The Report's data-quality pass against the exact-duplicate pass it extends, 100,000 examples, in one run.

Target (issue #21): the data-quality pass (near-duplicate clusters from the examples' signatures, outliers from
the token counts) within 2x of the exact-duplicate pass: the Report's own pass from scratch (every row's content
hash, split, problem codes and cached token counts read into a snapshot, grouped, and aggregated into counts,
duplicates and leakage). Both read the same SQLite dataset, imported from bench/import_export.py's data (support
chats with planted near-duplicates: 1 % of the examples are copies of another with one word changed), alternated
`--runs` times. The import stores each example's MinHash signature (migration 0011), so the cold quality pass reads
signatures, not texts; the same data imported without signing (rows as before 0011: every text read and signed)
gives the old cold pass for comparison, and both imports are timed, alternated, to show what signing costs the
import. A second pair measures the same passes in memory on the parsed records, as `tuneboard check` runs them:
content hashes and their counts against signatures, LSH and clusters. datasketch's MinHash is timed on a sample
for comparison.

    .venv/bin/python bench/quality_pass.py [--n 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from import_export import example, setup  # the import bench's data and database


def records(n: int, seed: int = 1) -> list[dict]:
    """The import bench's examples, with 1 % near-duplicates planted (one word of the last answer changed)."""
    rng = random.Random(seed)
    out = [example(rng) for _ in range(n)]
    for i in rng.sample(range(n), n // 100):
        copy = json.loads(json.dumps(out[rng.randrange(n)]))
        last = copy["messages"][-1]
        words = last["content"].split()
        words[rng.randrange(len(words))] = "changed"
        last["content"] = " ".join(words)
        out[i] = copy
    return out


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def process_cpu() -> float:
    """CPU seconds of this process so far (every thread; the token-counting helper process is not in it)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from sqlalchemy import func, select
    from sqlmodel import Session

    from app.datasets import import_tokens
    from app.datasets.datasets import create_dataset
    from app.datasets.importer import import_jsonl
    from app.datasets.quality.near_duplicates import comparable_text, find_clusters
    from app.datasets.validation import report_quality
    from app.datasets.validation.checks import content_hash
    from app.datasets.validation.modeltable import resolve_model
    from app.datasets.validation.report_quality import QualityMemo, dataset_clusters, findings
    from app.datasets.validation.report_rows import SnapshotStore, current_snapshot, read_state
    from app.datasets.validation.report_totals import aggregate
    from app.tables.dataset import EXAMPLES

    data = records(args.n)
    body = "".join(json.dumps(r) + "\n" for r in data).encode()
    with tempfile.TemporaryDirectory() as tmp:
        settings, engine = setup(Path(tmp))
        with Session(engine) as session:
            # Imports with and without signing, alternated (on, off, off, on, ...): the first of each is kept.
            imported: dict[bool, int] = {}
            print("import | signing | seconds | examples/s | this process's CPU s | load | after the commit")
            for i, sign in enumerate([True, False, False, True][: max(2, min(4, 2 * args.runs))]):
                import_tokens.SIGN = sign
                dataset_id = create_dataset(session, f"bench {i} {'signed' if sign else 'unsigned'}").id
                cpu = process_cpu()
                result, seconds = timed(
                    lambda dataset_id=dataset_id: import_jsonl(session, dataset_id, io.BytesIO(body), settings=settings)
                )
                cpu = process_cpu() - cpu
                # The signatures the helper had not made when the writer took their rows are stored after the
                # commit by a thread (import_signing): how long after the import's return they all are.
                late_s = timed(lambda result=result: result.signing.done.wait(600))[1] if result.signing else 0.0
                late_rows = result.signing.stored if result.signing else 0
                imported.setdefault(sign, dataset_id)
                print(
                    f"{i + 1} | {'on' if sign else 'off'} | {seconds:.2f} | {result.imported / seconds:,.0f} | "
                    f"{cpu:.2f} | {os.getloadavg()[0]:.1f} | {late_rows:,} signatures stored {late_s:.2f} s later"
                )
            import_tokens.SIGN = True
            dataset_id, unsigned_id = imported[True], imported[False]
            info = resolve_model(None, settings)
            state, unsigned = read_state(session, dataset_id), read_state(session, unsigned_id)
            # Both imports wrote their rows in one go: the same example is `offset` ids further in the unsigned one.
            first = {
                d: session.execute(select(func.min(EXAMPLES.c.id)).where(EXAMPLES.c.dataset_id == d)).scalar_one()
                for d in (dataset_id, unsigned_id)
            }
            offset = first[unsigned_id] - first[dataset_id]
            # The first snapshot counts any tokens the import did not: not part of either pass.
            current_snapshot(session, SnapshotStore(), state, info, settings)
            # The import signs in the helper's spare time and never waits for it; the rest is stored after the commit.
            signed_rows = session.execute(
                select(func.count()).where(EXAMPLES.c.dataset_id == dataset_id, EXAMPLES.c.near_signature.is_not(None))
            ).scalar_one()
            # The first pass after the import signs the rows the import left unsigned and stores them.
            _, first_s = timed(lambda: dataset_clusters(session, QualityMemo(), state))
            load = os.getloadavg()[0]
            print(
                f"signed rows after the import and its thread: {signed_rows:,} of {result.imported:,}; the first pass "
                f"after it (signing and storing any rest): {first_s:.2f} s"
            )
            print(f"load (1 min) {load:.1f}")
            # The pass before 0011 neither read nor stored signatures: storing is switched off for its timing.
            store_signatures = report_quality._store_signatures
            print(
                "run | exact-duplicate pass (report from scratch) | quality pass, cold (stored signatures) | ratio | "
                "after an edit | ratio | cold without stored signatures (before 0011) | ratio | clusters, outliers | "
                "load"
            )
            warm = QualityMemo()
            dataset_clusters(session, warm, state)
            for run in range(1, args.runs + 1):

                def exact():
                    snapshot = current_snapshot(session, SnapshotStore(), state, info, settings)
                    aggregate(snapshot.groups, info, "all", set(), snapshot.exact)
                    return snapshot

                snapshot, exact_s = timed(exact)

                def quality(snapshot=snapshot):
                    clusters = dataset_clusters(session, QualityMemo(), state)
                    return findings(snapshot.rows, clusters, "all")

                found, quality_s = timed(quality)

                def after_an_edit(snapshot=snapshot, run=run):
                    # A new dataset state, as an edit makes: clusters again, signatures from the memo.
                    clusters = dataset_clusters(session, warm, state._replace(rev=state.rev + run))
                    return findings(snapshot.rows, clusters, "all")

                _, warm_s = timed(after_an_edit)
                # The same data without stored signatures (every text read and signed): the cold pass before 0011.
                report_quality._store_signatures = lambda *args: None
                texts, texts_s = timed(lambda: dataset_clusters(session, QualityMemo(), unsigned))
                report_quality._store_signatures = store_signatures
                same = [c.example_ids for c in texts] == [[i + offset for i in c.example_ids] for c in found.clusters]
                print(
                    f"{run} | {exact_s:.2f} s | {quality_s:.2f} s | {quality_s / exact_s:.2f}x | {warm_s:.2f} s | "
                    f"{warm_s / exact_s:.2f}x | {texts_s:.2f} s | {texts_s / exact_s:.2f}x | "
                    f"{len(found.clusters):,}, {len(found.outliers):,} | {os.getloadavg()[0]:.1f}"
                    + ("" if same else " | CLUSTERS DIFFER from the signed-from-text pass")
                )
        engine.dispose()

    print("in memory (tuneboard check's passes):")
    ids = list(range(len(data)))
    for run in range(1, args.runs + 1):

        def hashes():
            digests = [content_hash(r) for r in data]
            Counter(digests)
            return digests

        digests, exact_s = timed(hashes)

        def near(digests=digests):
            texts = [comparable_text(r["messages"]) for r in data]
            return find_clusters(ids, digests, texts, ["train"] * len(data))

        clusters, near_s = timed(near)
        print(
            f"{run} | hashes {exact_s:.2f} s | near-duplicates {near_s:.2f} s | {near_s / exact_s:.2f}x | "
            f"{len(clusters):,} clusters"
        )

    try:
        from datasketch import MinHash
    except ImportError:
        return
    sample = [comparable_text(r["messages"]) for r in data[:2_000]]

    def datasketch_signatures():
        for text in sample:
            words = text.lower().split()
            m = MinHash(num_perm=64)
            m.update_batch([" ".join(words[i : i + 3]).encode() for i in range(max(1, len(words) - 2))])

    _, seconds = timed(datasketch_signatures)
    print(
        f"datasketch MinHash(64), 2,000 examples: {seconds:.2f} s; "
        f"{seconds * len(data) / 2_000:.1f} s per {len(data):,}"
    )


if __name__ == "__main__":
    main()
