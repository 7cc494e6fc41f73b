import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = pytest.mark.django_db
OLD = "an-Old-password-9"


@pytest.fixture
def admin(client):
    user = get_user_model().objects.create_user("loadbalancer", password=OLD)
    client.force_login(user)
    return client


def change(client, old, new, again=None):
    return client.post(reverse("maintenance:passwords"), {
        "old_password": old, "new_password1": new, "new_password2": again or new})


def test_the_password_changes_with_the_current_one_and_the_session_stays(admin):
    response = change(admin, OLD, "a-New-password-42")
    assert response.status_code == 302
    user = get_user_model().objects.get()
    assert user.check_password("a-New-password-42")
    assert admin.get(reverse("overview:index")).status_code == 200  # still logged in


@pytest.mark.parametrize(("old", "new", "words"), [
    ("wrong-password-1", "a-New-password-42", "Your old password was entered incorrectly"),
    (OLD, "short1", "too short"),
    (OLD, "password123", "too common"),
    (OLD, "8374659201", "entirely numeric"),
])
def test_a_wrong_current_or_a_weak_new_password_is_refused(admin, old, new, words):
    response = change(admin, old, new)
    assert response.status_code == 200
    assert words in response.content.decode()
    assert get_user_model().objects.get().check_password(OLD)
