"""Small builders for job tests: datasets of chat examples written straight to the database."""

from __future__ import annotations

from sqlmodel import Session

from app.datasets.validation import apply_check
from app.tables import Dataset, Example


def chat(i: int) -> dict:
    """A valid chat example, different for each i."""
    return {
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": f"What is {i} plus {i}?"},
            {"role": "assistant", "content": f"{i + i}"},
        ]
    }


def make_dataset(
    session: Session, n_train: int = 12, n_validation: int = 0, n_broken: int = 0, name: str = "arithmetic"
) -> Dataset:
    """A dataset with n_train unsplit valid examples, n_validation in the validation split, n_broken errors."""
    dataset = Dataset(name=name)
    session.add(dataset)
    session.commit()
    records = [(chat(i), None) for i in range(n_train)]
    records += [(chat(1000 + i), "validation") for i in range(n_validation)]
    records += [({"messages": [{"role": "user", "content": "no answer"}], "bad": True}, None)] * n_broken
    for position, (record, split) in enumerate(records):
        example = Example(
            dataset_id=dataset.id,
            position=position,
            messages=record["messages"],
            split=split,
            extra={k: v for k, v in record.items() if k != "messages"} or None,
        )
        apply_check(example)
        session.add(example)
    session.commit()
    return dataset
