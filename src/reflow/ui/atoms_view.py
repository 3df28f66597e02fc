"""What the dashboard shows of an atoms run beside its record: its atoms and the histories of
its retry controllers, as the API's models (failures as masked text, JSON values only)."""

from __future__ import annotations

from typing import Any

from reflow.store.base import SQLStore
from reflow.ui import models
from reflow.ui.data import result_view, states_out
from reflow.ui.masking import mask_text


def _failure_text(failure: dict[str, Any] | None) -> str | None:
    """An atom's failure (`Failure.to_dict()`) as `Type: message`."""
    if not failure:
        return None
    kinds = failure.get("type_names") or []
    kind = str(kinds[0]) if isinstance(kinds, list) and kinds else ""
    message = str(failure.get("exception_str") or "")
    text = f"{kind}: {message}" if kind else message
    return mask_text(text)


def atoms_out(store: SQLStore, run_id: str) -> list[models.AtomOut]:
    return [
        models.AtomOut(
            name=a.name,
            position=a.position,
            kind=a.kind,
            state=a.state,
            state_type=a.state_type,
            updated=a.updated,
            failure=_failure_text(a.failure),
            states=states_out(a.states),
        )
        for a in store.atoms(run_id)
    ]


def histories_out(store: SQLStore, run_id: str) -> list[models.RetryHistoryOut]:
    """Each retry controller's tries: the value it provided (JSON ones), the failures."""
    out = []
    for history in store.retry_histories(run_id):
        tries = []
        for i, each in enumerate(history.tries, start=1):
            value = None
            if each.value is not None:
                value, note = result_view(
                    each.value.encoding, each.value.data, len(each.value.data)
                )
                value = value if note is None else note
            tries.append(
                models.RetryTryOut(
                    index=i,
                    value=value,
                    failures={name: _failure_text(f) or "" for name, f in each.failures.items()},
                )
            )
        out.append(models.RetryHistoryOut(controller=history.controller, tries=tries))
    return out


__all__ = ["atoms_out", "histories_out"]
