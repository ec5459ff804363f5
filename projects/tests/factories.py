import factory

from accounts.tests.factories import UserFactory
from projects.models import Dataset, Project, ProjectMember


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


class DatasetFactory(factory.django.DjangoModelFactory):
    """A small stored CSV with a matching profile (uploads in tests go through ``dataset_create``)."""

    class Meta:
        model = Dataset

    project = factory.SubFactory(ProjectFactory)
    uploaded_by = factory.LazyAttribute(lambda o: o.project.owner)
    name = factory.Sequence(lambda n: f"data-{n}.csv")
    original_filename = factory.LazyAttribute(lambda o: o.name)
    file = factory.django.FileField(data=b"a,b\n1,x\n2,y\n", filename="data.csv")
    size = 12
    format = Dataset.Format.CSV
    row_count = 2
    column_count = 2
    profile = factory.LazyFunction(
        lambda: {
            "rows": 2,
            "column_count": 2,
            "columns": [
                {
                    "name": "a",
                    "dtype": "int64",
                    "kind": "numeric",
                    "missing": 0,
                    "stats": {"count": 2, "min": 1, "max": 2, "mean": 1.5, "std": 0.7},
                },
                {
                    "name": "b",
                    "dtype": "str",
                    "kind": "text",
                    "missing": 0,
                    "stats": {"count": 2, "unique": 2, "unique_exact": True, "top": []},
                },
            ],
            "preview": {"columns": ["a", "b"], "rows": [[1, "x"], [2, "y"]]},
        }
    )
