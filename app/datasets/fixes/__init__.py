"""Bulk fixes with a preview and undo, and the dataset's revision history.

The seam the routes use:
- FIXES, get_fix(name): the fixes (tool_arguments, trailing_whitespace, mask_pii, near_duplicates).
- preview_fix(session, dataset_id, name, example_ids=None) -> Preview: how many examples change, a few diffs.
- apply_fix(session, dataset_id, name, example_ids=None) -> Applied: one undoable step, with its sentence.
- keep_one(session, dataset_id, keep_id, example_ids, merge=False), review_clusters(session, dataset_id).
- list_revisions, undo_revision(session, dataset_id, revision_id) -> str.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session

from app.datasets.fixes.bulk import Applied, Change, ExampleDiff, Preview, apply_rewrite, clean_ids, preview_rewrites
from app.datasets.fixes.catalog import FIXES, NEAR_DUPLICATES, Fix, get_fix
from app.datasets.fixes.clusters import (
    ClusterView,
    keep_first_of_each,
    keep_one,
    preview_near_duplicates,
    review_clusters,
)
from app.datasets.fixes.revisions import get_revision, list_revisions, undo_revision

__all__ = [
    "FIXES",
    "Applied",
    "Change",
    "ClusterView",
    "ExampleDiff",
    "Fix",
    "Preview",
    "apply_fix",
    "get_fix",
    "get_revision",
    "keep_one",
    "list_revisions",
    "preview_all",
    "preview_fix",
    "review_clusters",
    "undo_revision",
]


def preview_fix(session: Session, dataset_id: int, name: str, example_ids: Iterable[Any] | None = None) -> Preview:
    """What the fix would change (nothing is written); `example_ids` limits it to those examples."""
    fix = get_fix(name)
    if fix.name == NEAR_DUPLICATES:
        return preview_near_duplicates(session, dataset_id)
    [preview] = preview_rewrites(session, dataset_id, [fix], clean_ids(example_ids))
    return preview


def apply_fix(session: Session, dataset_id: int, name: str, example_ids: Iterable[Any] | None = None) -> Applied:
    """Apply the fix as one undoable step; the result says how many examples it changed."""
    fix = get_fix(name)
    if fix.name == NEAR_DUPLICATES:
        return keep_first_of_each(session, dataset_id)
    return apply_rewrite(session, dataset_id, fix, clean_ids(example_ids))


def preview_all(session: Session, dataset_id: int) -> list[Preview]:
    """Every fix's preview, for the Fix panel: the rewrites in one pass over the examples."""
    rewrites = [fix for fix in FIXES.values() if fix.rewrite is not None]
    return [*preview_rewrites(session, dataset_id, rewrites), preview_near_duplicates(session, dataset_id)]
