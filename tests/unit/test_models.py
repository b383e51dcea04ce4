"""BroadcastsModelEvents: <Model>Created/Updated/Deleted on per-instance and per-model channels, after commit."""

from __future__ import annotations

import pytest
from django.db import connection, models, transaction
from django.test.utils import isolate_apps

from django_broadcasting.drivers import memory
from django_broadcasting.models import BroadcastsModelEvents, without_model_broadcasts
from django_broadcasting.testing import EventFake

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def article_model(settings):
    """A throw-away model class and table (the test app defines none)."""
    settings.BROADCASTING = {"DEFAULT_DRIVER": "memory"}
    memory.reset_outbox()
    with isolate_apps("tests.unit"):

        class Article(BroadcastsModelEvents, models.Model):
            title = models.CharField(max_length=100)
            published = models.DateTimeField(null=True)

            class Meta:
                app_label = "blog"

        class Comment(BroadcastsModelEvents, models.Model):
            body = models.CharField(max_length=100)
            broadcast_actions = ("created",)

            class Meta:
                app_label = "blog"

            def broadcast_channels_for(self, action):
                return ["comments"]

            def broadcast_data_for(self, action):
                return {"body": self.body}

        with connection.schema_editor() as editor:
            editor.create_model(Article)
            editor.create_model(Comment)
        try:
            yield Article, Comment
        finally:
            with connection.schema_editor() as editor:
                editor.delete_model(Comment)
                editor.delete_model(Article)


def summary():
    return [(m.event, m.channel) for m in memory.outbox]


def test_created_updated_deleted(article_model):
    Article, _ = article_model
    article = Article.objects.create(title="Hello")
    pk = article.pk
    assert summary() == [("ArticleCreated", f"blog.article.{pk}"), ("ArticleCreated", "blog.article")]
    data = memory.outbox[0].data
    assert data == {"model": "blog.article", "pk": pk, "fields": {"title": "Hello", "published": None}}

    memory.reset_outbox()
    article.title = "Changed"
    article.save()
    assert summary() == [("ArticleUpdated", f"blog.article.{pk}"), ("ArticleUpdated", "blog.article")]
    assert memory.outbox[0].data["fields"]["title"] == "Changed"

    memory.reset_outbox()
    article.delete()
    assert summary() == [("ArticleDeleted", f"blog.article.{pk}"), ("ArticleDeleted", "blog.article")]
    assert memory.outbox[0].data["pk"] == pk


def test_datetimes_are_encoded(article_model):
    import datetime

    Article, _ = article_model
    Article.objects.create(title="x", published=datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC))
    assert '"published":"2024-05-01T00:00:00Z"' in memory.outbox[0].data_json


def test_waits_for_commit_and_skips_rollback(article_model):
    Article, _ = article_model
    with transaction.atomic():
        Article.objects.create(title="in transaction")
        assert memory.outbox == []
    assert [e for e, _ in summary()] == ["ArticleCreated", "ArticleCreated"]

    memory.reset_outbox()
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            Article.objects.create(title="rolled back")
            raise RuntimeError
    assert memory.outbox == []


def test_overrides_and_action_filter(article_model):
    _, Comment = article_model
    comment = Comment.objects.create(body="first")
    comment.body = "edited"
    comment.save()  # "updated" is not in broadcast_actions
    comment.delete()
    assert [(m.event, m.channel, m.data) for m in memory.outbox] == [
        ("CommentCreated", "comments", {"body": "first"})
    ]


def test_without_model_broadcasts(article_model):
    Article, _ = article_model
    with without_model_broadcasts():
        Article.objects.create(title="quiet")
    assert memory.outbox == []


def test_model_events_are_dispatched_events(article_model):
    Article, _ = article_model
    with EventFake() as fake:
        Article.objects.create(title="faked")
    fake.assert_dispatched("ArticleCreated")
    assert memory.outbox == []  # a faked event is not broadcast


def test_queryset_delete_broadcasts_each_instance(article_model):
    Article, _ = article_model
    Article.objects.create(title="a")
    Article.objects.create(title="b")
    memory.reset_outbox()
    Article.objects.all().delete()
    assert [e for e, c in summary() if c == "blog.article"] == ["ArticleDeleted", "ArticleDeleted"]


def test_event_to_json_serializes_model_instances(article_model):
    from dataclasses import dataclass

    from django_broadcasting.events import Event

    Article, _ = article_model
    with without_model_broadcasts():
        first = Article.objects.create(title="one")
        Article.objects.create(title="two")

    @dataclass
    class Featured(Event):
        article: object
        related: object
        note: str = "x"

    data = Featured(first, Article.objects.order_by("pk")).to_json()
    assert data["article"] == {"id": first.pk, "title": "one", "published": None}
    assert [a["title"] for a in data["related"]] == ["one", "two"]
    assert data["note"] == "x"


async def test_async_orm_saves_broadcast(article_model):
    Article, _ = article_model
    article = await Article.objects.acreate(title="async")
    await article.adelete()
    assert [e for e, c in summary() if c == "blog.article"] == ["ArticleCreated", "ArticleDeleted"]
