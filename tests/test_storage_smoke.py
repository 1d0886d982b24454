from steward.storage.models import Street


async def test_database_starts_empty_and_keeps_rows(db: str) -> None:
    assert await Street.all().count() == 0
    await Street.create(name="鼓楼街道")
    assert [s.name for s in await Street.all()] == ["鼓楼街道"]
