"""The server's byte-budget LRU: budget kept, least recently used dropped first, oversize rules."""

from liifsr.serve.lru import ByteBudgetLRU


def test_least_recently_used_is_dropped_first_within_the_budget():
    lru: ByteBudgetLRU[str, bytes] = ByteBudgetLRU(10, len)
    lru.put("a", b"1234")
    lru.put("b", b"1234")
    assert lru.get("a") == b"1234"  # "a" is now the most recently used
    lru.put("c", b"1234")
    assert lru.get("b") is None and lru.get("a") is not None and lru.get("c") is not None
    assert lru.bytes == 8 <= lru.max_bytes and len(lru) == 2


def test_replacing_a_key_counts_its_bytes_once():
    lru: ByteBudgetLRU[str, bytes] = ByteBudgetLRU(10, len)
    lru.put("a", b"123456")
    lru.put("a", b"12")
    assert lru.bytes == 2 and len(lru) == 1


def test_a_value_over_the_whole_budget_is_not_stored_unless_kept_alone():
    tiles: ByteBudgetLRU[str, bytes] = ByteBudgetLRU(4, len)
    tiles.put("small", b"12")
    tiles.put("big", b"123456")
    assert tiles.get("big") is None and tiles.get("small") == b"12"

    images: ByteBudgetLRU[str, bytes] = ByteBudgetLRU(4, len, keep_oversize=True)
    images.put("small", b"12")
    images.put("big", b"123456")
    assert images.get("big") == b"123456" and images.get("small") is None and len(images) == 1


def test_drop_removes_the_matching_keys_and_their_bytes():
    lru: ByteBudgetLRU[tuple, bytes] = ByteBudgetLRU(100, len)
    for key in [("1", 0), ("1", 1), ("2", 0)]:
        lru.put(key, b"abc")
    lru.drop(lambda key: key[0] == "1")
    assert len(lru) == 1 and lru.bytes == 3 and lru.get(("2", 0)) == b"abc"
