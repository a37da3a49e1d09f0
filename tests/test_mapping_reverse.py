"""``to_tracker``'s reverse lookup of a field's values is worked out once per mapping: it must
answer exactly as ``Mapping._reverse`` (the first matching entry, by value or by text)."""
from __future__ import annotations

from pathlib import Path

from core.mapping import FieldMap, Mapping, _Reverse, load_mapping

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"


def candidates(fmap: FieldMap) -> list:
    found = [None, "", 0, 1, True, False, 2.0, "1", "True", "unknown value", ["a"], {"a": 1}]
    for tracker_value, model_value in (fmap.values or {}).items():
        found += [tracker_value, model_value, str(model_value), getattr(model_value, "value", None)]
    found += list(fmap.outbound_values) + list(fmap.outbound_values.values())
    return found


def test_shipped_mappings_reverse_as_the_loop_does():
    checked = 0
    for path in MAPPINGS.glob("*.yaml"):
        if path.name == "policy.yaml":
            continue
        mapping = load_mapping(path)
        for fmap in mapping.fields.values():
            if fmap.values is None:
                continue
            fast = _Reverse(fmap)
            for value in candidates(fmap):
                assert fast(value) == Mapping._reverse(fmap, value), (path.name, fmap.path, value)
                checked += 1
    assert checked > 100


def test_first_entry_wins_by_value_or_by_text():
    fmap = FieldMap(path="p", values={"A": "1", "B": 1, "C": True, "D": ["x"], "E": "x"},
                    outbound_values={"9": "nine"})
    fast = _Reverse(fmap)
    for value in (1, "1", True, ["x"], "x", "['x']", 9, "9", 2, None, 1.0):
        assert fast(value) == Mapping._reverse(fmap, value), value
    assert fast(1) == "A" and fast(["x"]) == "D" and fast(9) == "nine"
