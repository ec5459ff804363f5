"""reverse_pk: the URL ``reverse`` gives, built from one cached pattern per view name."""

import pytest
from django.urls import NoReverseMatch, reverse, set_script_prefix

from codingagent.lib.urls import reverse_fixed, reverse_pk


@pytest.fixture
def script_prefix():
    yield set_script_prefix
    set_script_prefix("/")


def test_reverse_pk_gives_the_url_reverse_gives():
    urls = [reverse_pk("exports:artifact-download", pk) for pk in (1, 42, 987654)]

    assert urls == [reverse("exports:artifact-download", args=[pk]) for pk in (1, 42, 987654)]


def test_reverse_pk_follows_the_script_prefix_of_the_request(script_prefix):
    reverse_pk("exports:artifact-detail", 7)
    script_prefix("/app/")

    assert reverse_pk("exports:artifact-detail", 7) == reverse("exports:artifact-detail", args=[7])
    assert reverse_pk("exports:artifact-detail", 7).startswith("/app/")


def test_reverse_pk_refuses_a_view_without_a_pk_as_reverse_does():
    with pytest.raises(NoReverseMatch):
        reverse_pk("projects:dashboard", 1)


def test_reverse_fixed_follows_the_script_prefix_of_the_request(script_prefix):
    reverse_fixed("exports:plotly-js")
    script_prefix("/app/")

    assert reverse_fixed("exports:plotly-js") == reverse("exports:plotly-js") == "/app/assets/plotly.min.js"
