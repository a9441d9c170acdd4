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


def test_every_error_is_public() -> None:
    """Users catch what the library raises: each MemshelfError subclass is importable from
    the top-level package."""
    import memshelf.errors

    raised = {
        name
        for name, obj in vars(memshelf.errors).items()
        if isinstance(obj, type) and issubclass(obj, memshelf.MemshelfError)
    }
    assert raised <= set(memshelf.__all__)
