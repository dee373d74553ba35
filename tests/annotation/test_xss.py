"""Item text, candidate text and guidelines are shown as text, never as live HTML."""

import pytest

from annotation.models import Candidate, Item

pytestmark = pytest.mark.django_db

PAYLOAD = '<script>alert("x")</script><img src=x onerror="alert(1)">'


def test_item_and_candidate_text_are_escaped_on_the_project_page(client, admin_user, project):
    item = Item.objects.create(project=project, text=f"Review: {PAYLOAD}")
    Candidate.objects.create(item=item, text=f"Answer {PAYLOAD}", model="m")
    client.force_login(admin_user)
    html = client.get(project.get_absolute_url()).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_guidelines_markdown_is_formatted_but_sanitised(client, admin_user, project):
    project.guidelines = (
        f"# Rules\n\nBe **kind**. {PAYLOAD}\n\n[click](javascript:alert(2)) "
        '<a href="https://example.org" onclick="alert(3)">docs</a>'
    )
    project.save()
    client.force_login(admin_user)
    html = client.get(project.get_absolute_url()).content.decode()
    assert "<h1>Rules</h1>" in html and "<strong>kind</strong>" in html
    guidelines = html.split('class="guidelines">', 1)[1].split("</div>", 1)[0]
    for dangerous in ("<script", "onerror", "onclick", "javascript:", "<img"):
        assert dangerous not in guidelines
    assert 'href="https://example.org"' in guidelines
