"""Shared fixtures. The suite runs twice in CI: on PostgreSQL + Redis (DATABASE_URL, REDIS_URL set)
and on the embedded default (SQLite, no Redis). Tests marked `postgres` or `redis` need the real
service and are skipped on the embedded run."""

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Membership, Role
from annotation.services.projects import project_create


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    skip_redis = pytest.mark.skip(reason="needs Redis (set REDIS_URL)")
    for item in items:
        if "postgres" in item.keywords and not settings.IS_POSTGRES:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not settings.REDIS_URL:
            item.add_marker(skip_redis)


@pytest.fixture
def make_user(django_user_model):
    def make(username, password="pw-secret-123", **extra):
        return django_user_model.objects.create_user(username=username, password=password, **extra)

    return make


@pytest.fixture
def admin_user(make_user):
    return make_user("alice")


@pytest.fixture
def annotator(make_user):
    return make_user("bob")


@pytest.fixture
def outsider(make_user):
    return make_user("mallory")


@pytest.fixture
def project(admin_user, annotator):
    project = project_create(
        user=admin_user,
        data={
            "name": "Sentiment",
            "task_type": "classification",
            "labels": ["positive", "negative"],
            "modes": ["rate", "compare", "edit", "label"],
            "overlap": 1,
            "guidelines": "Label the **sentiment**.",
        },
    )
    Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
    return project


@pytest.fixture
def api_client_for():
    def make(user=None):
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make
