from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import factory
from factory.django import DjangoModelFactory

from sigmasight.accounts.models import User

T = TypeVar("T")

if TYPE_CHECKING:

    class ModelFactory(DjangoModelFactory[T]):
        # factory_boy's metaclass __call__ is untyped, so mypy would type `SomeFactory()` as the
        # factory itself: this says what calling a factory returns, its model.
        def __new__(cls, *args: Any, **kwargs: Any) -> T: ...  # type: ignore[misc]

else:
    ModelFactory = DjangoModelFactory

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class UserFactory(ModelFactory[User]):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")

    @classmethod
    def _create(cls, model_class: type[User], *args: Any, **kwargs: Any) -> User:
        kwargs.setdefault("password", DEFAULT_PASSWORD)
        return model_class.objects.create_user(*args, **kwargs)
