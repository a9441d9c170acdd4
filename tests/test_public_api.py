import memshelf


def test_all_names_exist_and_are_sorted() -> None:
    assert sorted(memshelf.__all__) == memshelf.__all__
    for name in memshelf.__all__:
        assert hasattr(memshelf, name), name


def test_errors_share_one_base() -> None:
    for name in memshelf.__all__:
        obj = getattr(memshelf, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, memshelf.MemshelfError)
