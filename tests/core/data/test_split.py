from collections import Counter

from core.data.split import stratified_split


def test_split_is_deterministic_stratified_and_order_independent():
    strata = {f"img{i}": i % 4 for i in range(400)}
    a = stratified_split(strata, seed=7)
    b = stratified_split(dict(reversed(list(strata.items()))), seed=7)
    assert a == b
    for cls in range(4):
        counts = Counter(s for i, s in a.items() if strata[i] == cls)
        assert counts == {"train": 80, "val": 10, "test": 10}
    assert stratified_split(strata, seed=8) != a


def test_tiny_strata_keep_train_populated():
    a = stratified_split({"a": "x", "b": "y", "c": "y"})
    assert a["a"] == "train"
    assert sorted(a[i] for i in "bc").count("train") >= 1
