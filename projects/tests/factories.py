import factory

from accounts.tests.factories import UserFactory
from projects.models import Project, ProjectMember


class ProjectFactory(factory.django.DjangoModelFactory):
    """A project whose owner is also its owner member (as the service creates it)."""

    class Meta:
        model = Project
        skip_postgeneration_save = True

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Project {n}")
    description = "A project for tests."

    @factory.post_generation
    def owner_membership(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            ProjectMember.objects.create(project=obj, user=obj.owner, role=ProjectMember.Role.OWNER)


class ProjectMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProjectMember

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = ProjectMember.Role.EDITOR
