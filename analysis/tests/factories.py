import factory

from analysis.models import AnalysisSession, Run, Step
from projects.tests.factories import ProjectFactory


class AnalysisSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AnalysisSession

    project = factory.SubFactory(ProjectFactory)
    user = factory.LazyAttribute(lambda o: o.project.owner)
    title = factory.Sequence(lambda n: f"Session {n}")


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Run

    session = factory.SubFactory(AnalysisSessionFactory)
    user = factory.LazyAttribute(lambda o: o.session.user)
    question = "What is the mean price by region?"
    status = Run.Status.SUCCEEDED


class StepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Step

    run = factory.SubFactory(RunFactory)
    ordinal = factory.Sequence(lambda n: n + 1)
    kind = Step.Kind.THOUGHT
    content = "Looking at the data."
